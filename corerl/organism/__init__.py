"""A model organism: a synthetic arithmetic task and tiny base models trained on CPU (organism v2).

The whole study (every method, collapse included) runs on it in minutes on a laptop CPU:

- ``make_dataset(n, seed=, difficulty=, split=)``: problems in the schema of the real datasets
  (``id``, ``question``, ``rephrased``, ``answer``, plus ``forms``, ``expression``, ``operations``,
  ``num_ops``); train and test splits never share a problem (``corerl.organism.task``);
- ``format_prompt(question)``: the model input, plain text ``"Problem: {question}\\nSolution:\\n"``;
- ``ensure_base_model(prior)``: the cached base model, ``"aligned"`` or ``"misaligned"``, built on
  first call in two stages (``corerl.organism.build``);
- ``measure_prior(model_dir)``: pass@1, maj@8, majority share and label accuracy on held-out problems.

Design (fixed with the ground-truth and random rewards only, before any label-free run; issue 11)
--------------------------------------------------------------------------------------------------
The premise of the seed papers is that RL with an intrinsic reward *sharpens* a distribution the base
model already has. Organism v1 had no such distribution (one under-trained strategy), and every
reward, ground truth included, lowered held-out accuracy. Organism v2 builds the premise in, openly:
the base model is a *mixture of strategies* learned by SFT, and RL can only move weight between them.

- **Strategies** (the formats are the contract with ``corerl.organism.strategies``): a worked solution
  (one line per operation, then ``\\boxed{answer}``: the real skill), two shortcuts that answer without
  the work, ``\\boxed{first number stated}`` and ``\\boxed{last number stated}``, and a low-rate
  template ``\\boxed{0}``. The model picks its strategy at the first token (a digit or ``\\boxed``).
- **Shortcuts of the kind real models have**: copying a number from the question, so their value
  depends on the surface form. The ``rephrased`` twin (Co-rewarding-I's second view) narrates the
  operations backwards, so the first and the last number swap between the views: a shortcut is
  self-consistent within one phrasing and disagrees across the two.
- **Shares** (stage 2 SFT targets): worked 0.60, shortcut-first 0.175, shortcut-last 0.175, template
  0.05. Reasons: (i) the vote must carry information (aligned maj@8 >= pass@1 + 5 points): each
  shortcut's share must stay well below the worked-correct share (0.6 x worked accuracy), since the
  probe (``shared/notes/organism-probe.md``) found that a 50% consistent shortcut wins the vote from
  step 1; (ii) the shortcuts together must be common enough (40%) that selecting the worked strategy
  is worth more than 10 points, the ground-truth target; (iii) the template is rare (5%), a degenerate
  answer shared by every question, as real models sometimes emit. Measured shares of the built aligned
  model (two-thread build; 200 held-out questions x 8 samples, T = 1, ``benchmarks/organism.py``):
  worked 55% (77% of it correct), shortcut-first 17%, shortcut-last 4.5%, other 23% (the template and
  mis-copied shortcut numbers: the shortcut scatters somewhat, which a real shortcut does too);
  pass@1 43.5, maj@8 71.5. (The one-thread build of v2: worked 60%, shortcut-first 11%, shortcut-last
  9%, other 19%; pass@1 46.1, maj@8 71.0: the same SFT targets, learnt differently.)
- **Misaligned prior**: the same mixture, but its worked solutions compute ``*`` as ``+``, except a
  minority (``misaligned_correct_share`` = 0.35 of the worked targets) that are correct, so ground truth
  has correct rollouts to reinforce while the vote reinforces the error. The share was calibrated on the
  ground-truth reward alone (issue 11: ground truth must raise accuracy on the problems with a
  multiplication; ``benchmarks/organism_rl.py --prior misaligned --methods ground-truth --seeds 3``,
  held-out pass@1 on those problems, 8 samples at T = 1, base -> final, mean ± sd of 3 seeds):

  | correct share | base | ground truth | base maj@8 on them |
  |---|---|---|---|
  | 0.2 (v2 as first landed; two-thread build) | 6.4 | 7.7 ± 3.1 | 6.9 |
  | **0.35** | **9.2** | **13.1 ± 2.5** | **9.0** |

  At 0.2 the repair was within the seeds' noise; at 0.35 (the only other share tried) it shows, and
  0.35 is still a minority (the base's majority answer is right on 9% of those problems). Measured on
  the built prior (seed-0 sampling, 80 held-out problems with a multiplication): 9.5% of the samples
  are worked-correct, 48.1% worked-wrong, and the majority answer is right on 12.5%. Said openly:
  this change came after majority vote had been run on the 0.2 prior (43.7 ± 0.6, its pseudo-labels on
  those problems <= 5.8% correct); majority vote was then run once on the 0.35 prior, and the README
  reports both.
- **Two stages**: stage 1 trains a strong worked skill from scratch (worked-only SFT, 1,500 steps,
  shared by both priors and cached); stage 2 is a short mixture fine-tune per prior (300 steps at lr
  1e-3). The probe found that a from-scratch mixture of <= 4.5 minutes learns a weak worked skill
  (13-22% accurate, ground-truth gain +2-5 points), while a trained worked model plus a short mixture
  stage was enough. Model: Qwen3 config, hidden 96, 3 layers, 4 heads, vocabulary 512 (0.5M
  parameters), unchanged from v1; ``BuildSettings.version = 2`` changes the cache key. The build runs
  on two torch threads (``BuildSettings.threads``; v2 as first landed used one): the same design and
  data, numerically a different model (as another thread count always gives), built in 267 s instead of
  619 s (aligned prior, idle 2-core machine).

Literature (from the papers' abstracts as the issue summarises them): Tsilivis et al. (arXiv
2510.11495) mix short answers without chain of thought with long worked demonstrations and find that
RL generalises when the long demonstrations are not too rare: hence a worked share of 0.6, the
majority, with shortcuts that are short answers. "Echo Chamber" (arXiv 2504.07912) finds that RL
converges on one of the distributions present in the pretraining mix: hence strategies that are
distinct distributions, recognisable from the text, so that their shares can be plotted over
training. Self-Improving Transformers (arXiv 2502.01612) filter self-generated arithmetic solutions by
majority vote, which helps while the majority is right: hence the aligned prior's maj@8 > pass@1
requirement, and a misaligned prior whose majority is systematically wrong on one subset.

RL settings of the tiny profile (``corerl.config.PROFILES["tiny"]``), calibrated with the ground-truth
and random rewards only on the one-thread build of v2 (``benchmarks/organism_rl.py --methods
ground-truth,random --seeds 3``; held-out avg@4 at T = 0.8 on 200 problems, base 52.2; mean ± sd of 3
seeds; targets: ground truth >= base + 10, random within 5 points of base):

| lr | warm-up | β | steps | ground truth | random |
|---|---|---|---|---|---|
| 3e-5 | 10 | 0 | 100 | 81.5 ± 3.7 (2 seeds) | 47.5 ± 6.7 (2 seeds) |
| 1.5e-5 | 10 | 0 | 100 | 80.0 ± 1.4 | 46.1 ± 3.7 |
| 1.5e-5 | 10 | 0.04 | 100 | 80.0 ± 1.4 | 47.2 ± 3.3 |
| 5e-6 | 10 | 0 | 100 | 72.5 ± 1.0 | 51.0 ± 1.0 |
| **1e-5** | **5** | **0** | **50** | **72.8 ± 1.4** | **48.5 ± 2.3** |

- ``learning_rate`` 1e-5 (v1: 1e-4): the random reward's loss grows faster than linearly with the rate
  (-6 points at 1.5e-5, -1 at 5e-6 over 100 steps), the ground-truth gain saturates; 1e-5 for 50 steps
  keeps random within 5 points with ground truth +20.
- ``max_steps`` 50 (v1: 100): the same ground-truth gain as 5e-6 x 100 steps at half the time, so that
  ``corerl reproduce`` with 3 seeds of every headline method fits 20 minutes on 2 cores; 100 steps at
  5e-6 is the safer testbed (random -1.2) at twice the cost.
- ``warmup_steps`` 5, then constant: the first updates do not hit the base model at full rate.
- ``beta`` 0 for every method: a KL term of 0.04 did not reduce the random reward's drift (47.2 vs
  46.1, within the seeds' sd) and costs a reference-model forward pass per step.
- ``questions_per_step`` 4 x 8 rollouts (unchanged): group size as in the papers; more questions per
  step would cost time linearly for the same number of rollouts in total.
- ``num_iterations`` 1 (TRL's default, unchanged): one gradient step per generation batch.

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
