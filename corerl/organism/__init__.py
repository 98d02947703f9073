"""A model organism: a synthetic arithmetic task and tiny base models trained from scratch on CPU.

The whole study (every method, collapse included) runs on it in minutes on a laptop CPU:

- ``make_dataset(n, seed=, difficulty=, split=)``: problems in the schema of the real datasets
  (``id``, ``question``, ``rephrased``, ``answer``, plus ``forms``, ``expression``, ``operations``,
  ``num_ops``); train and test splits never share a problem (``corerl.organism.task``);
- ``format_prompt(question)``: the model input, plain text ``"Problem: {question}\\nSolution:\\n"``;
  the model answers with one line per step and ``\\boxed{answer}`` then EOS;
- ``ensure_base_model(prior)``: the cached base model, ``"aligned"`` (scattered errors) or
  ``"misaligned"`` (multiplication computed as addition), built on first call (``corerl.organism.build``);
- ``measure_prior(model_dir)``: pass@1, maj@8, majority share and label accuracy on held-out problems.

Heavy dependencies (torch, transformers, datasets) are imported inside the functions that need them.
"""

from corerl.organism.build import PRIORS, BuildSettings, ensure_base_model, smoke_settings
from corerl.organism.dataset import export_jsonl, make_dataset, make_rows
from corerl.organism.figures import PriorFigures, measure_prior
from corerl.organism.task import DEFAULT_DIFFICULTY, Problem, format_prompt, worked_solution

__all__ = [
    "DEFAULT_DIFFICULTY",
    "PRIORS",
    "BuildSettings",
    "PriorFigures",
    "Problem",
    "ensure_base_model",
    "export_jsonl",
    "format_prompt",
    "make_dataset",
    "make_rows",
    "measure_prior",
    "smoke_settings",
    "worked_solution",
]
