"""The organism RL benchmark's verdict table (``benchmarks/organism_rl.py``): the collapse rule on
synthetic per-seed curves, the Markdown table and ``--tabulate`` of saved JSON files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "organism_rl.py"


@pytest.fixture(scope="module")
def organism_rl():
    spec = importlib.util.spec_from_file_location("organism_rl_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Percent by step, as the benchmark saves them (JSON keys are strings).
COLLAPSING = [
    {"0": 40.0 + seed, "100": 55.0 + seed, "200": 35.0 + seed, "400": 5.0 + seed} for seed in range(3)
]
RISING = [{"0": 40.0 + seed, "100": 55.0 + seed, "200": 60.0 + seed, "400": 64.0 + seed} for seed in range(3)]


def entry(curves, **extra):
    return {"prior": "illusion", "regime": "long", "curves": curves, **extra}


def test_the_verdict_is_the_collapse_rule_on_the_seed_means(organism_rl) -> None:
    found = organism_rl.verdict(COLLAPSING)
    assert (found["base"], found["peak"], found["peak_step"], found["final"]) == (41.0, 56.0, 100, 6.0)
    assert found["drop"] == 50.0 and found["n_seeds"] == 3 and found["collapsed"] is True
    falling = organism_rl.verdict(
        [{"0": 40.0 + seed, "200": 20.0 + seed, "400": 5.0 + seed} for seed in range(3)]
    )
    assert (falling["rose"], falling["fell"], falling["collapsed"]) == (False, True, False)  # no rise first
    rising = organism_rl.verdict(RISING)
    assert (rising["peak_step"], rising["drop"], rising["collapsed"]) == (400, 0.0, False)


def test_the_table_has_one_row_per_method_and_heldout_set(organism_rl, tmp_path: Path) -> None:
    saved = tmp_path / "long.json"
    saved.write_text(
        json.dumps(
            {
                "majority-vote": entry(COLLAPSING, curves_heldout_hard=RISING, commit="0123456789abcdef"),
                "ground-truth": entry(RISING),
            }
        )
    )
    results = organism_rl.tabulate([saved])
    table = organism_rl.verdict_table(results)
    assert (
        "| illusion | long | majority-vote | heldout | 41.0 | 56.0 (100) | 6.0 | 50.0 | 2.0 | yes | yes | yes | 3 | 0123456 |"
        in table
    )
    assert (
        "| illusion | long | majority-vote | heldout_hard | 41.0 | 65.0 (400) | 65.0 | 0.0 | 2.0 | yes | no | no | 3 |"
        in table
    )
    assert (
        "| illusion | long | ground-truth | heldout | 41.0 | 65.0 (400) | 65.0 | 0.0 | 2.0 | yes | no | no | 3 |"
        in table
    )
    assert len(table.strip().splitlines()) == 2 + 3


def test_tabulate_writes_the_markdown_with_the_command_and_commit(organism_rl, tmp_path, monkeypatch) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"majority-vote": entry(COLLAPSING)}))
    second.write_text(json.dumps({"majority-vote": {**entry(RISING), "regime": "hard"}}))
    markdown = tmp_path / "table.md"
    argv = ["organism_rl.py", "--tabulate", str(first), str(second), "--markdown", str(markdown)]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(organism_rl, "git_commit", lambda: "abc1234")
    assert organism_rl.main() == 0
    header, _, table = markdown.read_text().partition("\n\n")
    assert "--tabulate" in header and "commit abc1234" in header
    assert "| illusion | long | majority-vote | heldout | 41.0 | 56.0 (100) |" in table
    assert "| illusion | hard | majority-vote | heldout | 41.0 | 65.0 (400) |" in table


def test_a_file_that_is_not_a_benchmark_json_is_named(organism_rl, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"majority-vote": {"prior": "illusion"}}))
    with pytest.raises(ValueError, match="bad.json: entry 'majority-vote' has no 'curves'"):
        organism_rl.tabulate([bad])


def test_a_label_names_one_method_only(organism_rl, tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "x.json"
    argv = ["organism_rl.py", "--methods", "random,ground-truth", "--label", "x", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        organism_rl.main()
    assert "--label names one method's entry; got 2 methods" in capsys.readouterr().err
    assert not out.exists()


def test_the_kept_model_is_the_last_step_or_early_stoppings_best_checkpoint(organism_rl) -> None:
    curve = {0: 40.0, 25: 55.0, 50: 60.0, 75: 52.0, 100: 50.0, 400: 30.0}
    assert organism_rl.kept_figures(curve, None, 400) == {"stopped_at": 400, "kept_step": 400, "kept": 30.0}
    stopped = {"best_step": 50, "stopped_at": 100}
    assert organism_rl.kept_figures(curve, stopped, 400) == {"stopped_at": 100, "kept_step": 50, "kept": 60.0}
    ran_out = {"best_step": 50, "stopped_at": None}  # patience never ran out: the run reached its last step
    assert organism_rl.kept_figures(curve, ran_out, 400)["stopped_at"] == 400


def test_a_kept_checkpoint_between_held_out_rows_is_named(organism_rl) -> None:
    with pytest.raises(ValueError, match=r"no row at step\(s\) \[30\].*--eval-every must divide"):
        organism_rl.kept_figures({0: 40.0, 25: 50.0, 50: 45.0}, {"best_step": 30, "stopped_at": 50}, 400)
