"""Answer extraction, normalisation and equivalence, on real answers from the shipped datasets."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corerl.answers import _math_verify_equal, answers_match, extract_answer, normalize_answer
from corerl.data import DATA_DIR


def _real_answers() -> list[str]:
    answers = []
    for name in ("math500", "amc", "aime24"):
        with (DATA_DIR / f"{name}.jsonl").open() as handle:
            answers += [json.loads(line)["answer"] for line in handle]
    return answers


REAL_ANSWERS = _real_answers()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"The answer is $\boxed{5}$.", "5"),
        (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),
        (
            r"first \boxed{1}, finally \boxed{\left( 3, \frac{\pi}{2} \right)}",
            r"\left( 3, \frac{\pi}{2} \right)",
        ),
        (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        (r"\fbox{7}", "7"),
        (r"\boxed{2} and then \fbox{3}", "3"),
        (r"\boxed { 12 }", "12"),
        (r"so \boxed 42.", "42"),
        (r"\boxed{\text{(C)}}", r"\text{(C)}"),
        (r"\boxed{a\{b\}}", r"a\{b\}"),
        ("no box at all", None),
        (r"\boxed{\frac{1}{2}", None),
        (r"\boxed{}", ""),
        (r"\boxedfoo{3}", None),
        ("", None),
    ],
)
def test_extract_answer_cases(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_recovers_every_real_answer_from_a_completion() -> None:
    for answer in REAL_ANSWERS:
        completion = f"Step 1... Step 2... Therefore the final answer is $\\boxed{{{answer}}}$."
        assert extract_answer(completion) == answer.strip()


def test_extract_answer_of_non_string_is_none() -> None:
    assert extract_answer(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("142.0", "142"),
        ("-3.00", "-3"),
        ("2.50", "2.5"),
        (".5", "0.5"),
        ("1,000", "1000"),
        ("(1,2)", "(1,2)"),
        (r"\$32,\!348", "32348"),
        (r"\dfrac{3}{4}", r"\frac{3}{4}"),
        (r"\tfrac34", r"\frac{3}{4}"),
        (r"\frac 59", r"\frac{5}{9}"),
        (r"\sqrt2", r"\sqrt{2}"),
        (r"\left[ -2, 7 \right)", "[-2,7)"),
        (r"12\text{ cm}", "12"),
        (r"864 \mbox{ inches}^2", "864"),
        (r"90^\circ", "90"),
        (r"30^{\circ}", "30"),
        (r"25\%", "25"),
        (r"\text{(A)}", "(A)"),
        ("x = 7", "7"),
        ("y=2x+1", "2x+1"),
        ("x+y=3", "x+y=3"),
        ("  p - q ", "p-q"),
        # Matrices keep their structure: only the spaces go, the row separator stays.
        (r"\begin{pmatrix} -1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}-1\\2\end{pmatrix}"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_answer_cases(raw: str | None, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_normalize_answer_is_idempotent_on_real_answers() -> None:
    for answer in REAL_ANSWERS:
        once = normalize_answer(answer)
        assert normalize_answer(once) == once, answer


def test_normalization_keeps_the_mathematics_of_real_answers() -> None:
    """math-verify itself (not our fast path) agrees that each normal form equals the original."""
    changed = [
        (answer, normalize_answer(answer)) for answer in REAL_ANSWERS if normalize_answer(answer) != answer
    ]
    assert len(changed) > 100  # the table exercises real rewriting, not a no-op
    disagreements = [pair for pair in changed if not _math_verify_equal(*pair, in_main_thread=True)]
    assert disagreements == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0.5", r"\frac{1}{2}", True),
        ("142.0", "142", True),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \pi/2)", True),
        ("p - q", "-q + p", True),
        (r"\sqrt{8}", r"2\sqrt{2}", True),
        ("10", "10.000", True),
        ("3", "4", False),
        (r"\frac{1}{3}", "0.3", False),
        ("x", "y", False),
        (None, "1", False),
        ("1", None, False),
        ("", "", False),
        ("  ", "1", False),
        (r"\frac{1}{", "1", False),
    ],
)
def test_answers_match_cases(a: str | None, b: str | None, expected: bool) -> None:
    assert answers_match(a, b) is expected


@pytest.mark.parametrize(
    ("truth", "hedged"),
    [
        ("4", r"4\text{ or 5}"),
        ("5", r"4\text{ or 5}"),
        ("100", r"100\text{ or more}"),
        ("100", "100 or more"),
        ("100", r"\text{at least }100"),
        ("2", r"2\mathrm{i}"),
        ("2", r"2\text{ to }3"),
    ],
)
def test_a_hedged_answer_is_not_graded_correct(truth: str, hedged: str) -> None:
    """Issue 13.5: stripping units must not strip alternatives, qualifiers or the imaginary unit."""
    from corerl.rewards import ground_truth_reward

    assert answers_match(truth, hedged) is False
    assert ground_truth_reward(["q"], [rf"\boxed{{{hedged}}}"], answer=[truth]) == [0.0]


@pytest.mark.parametrize(
    ("truth", "answer"),
    [
        ("12", r"12\text{ cm}"),
        ("2", "x=2"),
        ("90", r"90^\circ"),
        ("5", r"5\text{ m}"),
        ("10", r"10\text{ cm}^2"),
        ("7", r"7\text{ dollars}"),
        ("2i", r"2\mathrm{i}"),
        (r"\text{(A)}", "(A)"),
    ],
)
def test_units_and_labels_still_match(truth: str, answer: str) -> None:
    assert answers_match(truth, answer) is True


def test_answers_match_is_bounded_on_a_pathological_power_tower() -> None:
    # sympy would evaluate 2^(10^(10^10)) forever; the time bound turns that into "not equal".
    assert answers_match("2^{10^{10^{10}}}", "3") is False


def test_answers_match_works_off_the_main_thread() -> None:
    # The worker process bounds the time on any thread (SIGALRM would only work on the main one).
    results: list[bool] = []
    pairs = [("0.125", r"\frac{1}{8}"), ("0.126", r"\frac{1}{8}"), ("2^{10^{10^{11}}}", "5")]
    thread = threading.Thread(target=lambda: results.extend(answers_match(a, b) for a, b in pairs))
    thread.start()
    thread.join(timeout=120)
    assert results == [True, False, False]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\\boxed{}fbox()[]$.,=-+ 0123456789abcx^_%")), max_size=60))
def test_extraction_and_normalisation_are_total(text: str) -> None:
    extracted = extract_answer(text)
    assert extracted is None or isinstance(extracted, str)
    assert isinstance(normalize_answer(text), str)
    assert isinstance(normalize_answer(extracted), str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_extraction_and_normalisation_are_total_on_any_unicode(text: str) -> None:
    assert isinstance(normalize_answer(text), str)
    extract_answer(text)


@settings(max_examples=40, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("\\frac{}()^_0123456789xy+-*/.,=")), max_size=25),
    st.text(max_size=10),
)
def test_answers_match_never_raises(a: str, b: str) -> None:
    assert answers_match(a, b) in (True, False)


# ------------------------------------------------ no side effects on the caller (issue 13.9)


def test_answers_match_leaves_the_callers_alarm_alone() -> None:
    import signal

    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert answers_match("0.3125", r"\frac{5}{16}") is True  # reaches math-verify
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 30.0 and not fired  # still pending, not cancelled
        assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


UNGUARDED_SCRIPT = """
import threading, sys
from pathlib import Path
with open(sys.argv[1], "a") as marker:  # an unguarded __main__: runs again in any spawned child
    marker.write("ran\\n")
from corerl.answers import answers_match
results = []
thread = threading.Thread(target=lambda: results.append(answers_match("0.375", r"\\frac{3}{8}")))
thread.start()
thread.join()
print(results)
"""


def test_answers_match_off_the_main_thread_does_not_rerun_the_callers_main(tmp_path) -> None:
    import subprocess
    import sys

    script, marker = tmp_path / "script.py", tmp_path / "marker.txt"
    script.write_text(UNGUARDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(marker)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[True]"
    assert marker.read_text().splitlines() == ["ran"]  # the caller's script ran once


def test_a_hung_comparison_is_killed_and_counts_as_not_equal() -> None:
    import sys
    import time

    from corerl.answers import VerifyWorker

    hanging = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)"]
    worker = VerifyWorker(hanging, timeout=1.0)
    started = time.monotonic()
    assert worker.equal("1", "2") is False
    assert time.monotonic() - started < 30 and worker.process is None  # killed, restarted on next use


@pytest.mark.parametrize(
    ("a", "b"), [("23", "24"), ("7", "007"), ("-3", "3"), ("-0", "0"), ("1,000", "1000")]
)
def test_two_integers_are_decided_without_the_worker_as_math_verify_decides(
    monkeypatch, a: str, b: str
) -> None:
    from corerl import answers

    expected = _math_verify_equal(a, b, in_main_thread=True)
    monkeypatch.setattr(answers._worker, "equal", lambda *_: pytest.fail("the worker was asked"))
    answers._answers_match_cached.cache_clear()
    assert answers_match(a, b) is expected
