"""The notebooks' install cell hands over here (``from corerl.install import install``).

A thin re-export of :func:`corerl.machine.install.install`, kept at this path because every notebook's
install cell imports it from here (standard library only, like the module it re-exports).
"""

from __future__ import annotations

from corerl.machine.install import install

__all__ = ["install"]
