"""corerl: label-free RL for LLM reasoning, from a laptop CPU to a free T4.

The light core (answers, voting, rewards, data) imports in well under a second; modules that need
torch/transformers/trl import them lazily, so ``corerl --help`` stays fast.
"""

__version__ = "0.1.0"
