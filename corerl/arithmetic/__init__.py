"""The model organism's arithmetic task, as data (the bottom layer; docs/architecture.md).

- ``task``: problems (a start value and 1-4 operations), their surface forms, prompts and worked
  solutions, difficulty and the train/test split;
- ``dataset``: datasets of those problems in the schema of the real datasets;
- ``strategies``: which strategy a completion used, recognised from its text alone;
- ``step_check``: the organism's label-free step-checking verifier (a reward in ``corerl.rewards``).

No model here: the base models trained on the task and their measured figures are ``corerl.organism``,
which re-exports the public names of this package. Importing it imports nothing heavy.
"""
