"""The machine a run runs on and the files it leaves (the bottom layer; docs/architecture.md).

- ``install``: the pinned stack and its installer (standard library only: the notebooks' install cell
  runs it before any dependency is installed; ``corerl.install`` re-exports it);
- ``hardware``: what the GPU can do for torch, and which optional packages import;
- ``provenance``: the git commit a run ran from;
- ``rundir``: a run directory's integrity (lock, complete checkpoints, a finished run, the model a run
  is evaluated with).

Importing this package imports nothing else.
"""
