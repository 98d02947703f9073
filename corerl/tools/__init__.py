"""The tools that drive the notebooks and the machine (the top layer; docs/architecture.md).

- ``notebooks``: the numbered notebooks' shared cells and stripped outputs (``python -m corerl.notebooks``);
- ``reproduce``: ``corerl reproduce``, every notebook executed in order;
- ``plan``: ``corerl plan``, the time and memory a profile's study needs (a cost model);
- ``rehearsal``: the GPU path rehearsed on a CPU with a 135M model.

Importing this package imports nothing else.
"""
