"""SRT's mitigations of reward hacking (arXiv 2505.21444 Sec. 5) and small-set test-time training (TTRL).

One module per mitigation, each usable on its own, and the hooks that apply them to a run:

- ``early_stopping`` (SRT Sec. 5.1): a labelled 1% validation slice, the ``EarlyStopping``
  callback that checkpoints each new best and stops after ``patience`` evaluations without one, and
  ``evaluation_model`` (an early-stopped run is evaluated at its best checkpoint, never ``final/``).
  Imports transformers.
- ``votes``: the frozen base model's majority votes, computed once and cached; offline labels
  (SRT Sec. 5.2) and the easy-first curriculum (SRT Sec. 5.3) are built on them.
- ``ttrl``: at most 128 questions of a test set to train on, label-free (TTRL).
- ``hooks``: how a ``TrainConfig`` applies them (``early_stopping``, ``offline_labels``,
  ``curriculum_fraction``, ``test_time_training``); its departures from the papers are stated there.
- ``files``: atomic writes of their JSON files.

``corerl.engine`` calls in twice: :func:`select_rows` before any model loads, and :func:`prepare`
once the base model is loaded, which returns a :class:`RunMitigations` (the rows to train on, the
callbacks the trainer installs, the test-time evaluations before and after training). Importing this
package imports no torch or transformers.
"""

from __future__ import annotations

from corerl.mitigations.hooks import RunMitigations, prepare, select_rows

__all__ = ["RunMitigations", "prepare", "select_rows"]
