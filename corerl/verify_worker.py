"""math-verify in a child process of ``corerl.answers``: one JSON ``[gold, prediction]`` per stdin line,
``1``/``0`` per stdout line, after a first ``ready`` line.

The child is started with ``python -m corerl.verify_worker`` (not ``multiprocessing``), so it never
re-imports the caller's ``__main__``, and math-verify's SIGALRM time bounds run in the child's own
main thread, never touching the caller's alarms or timers. The parent kills it when an answer is
late. It exits when its stdin closes (the parent ended).
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from corerl.answers import _math_verify_equal

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            gold, prediction = json.loads(line)
            equal = _math_verify_equal(gold, prediction, in_main_thread=True)
        except Exception:  # malformed LaTeX makes sympy raise almost anything: not equal
            equal = False
        sys.stdout.write("1\n" if equal else "0\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
