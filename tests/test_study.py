"""corerl.study: run naming, config precedence, load-or-resume-or-train, the results table (no training)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd
import pytest

from corerl import study as study_module
from corerl.config import to_yaml
from corerl.study import Study, resolve_profile, smooth
from corerl.study import runs as study_runs


@pytest.fixture
def tiny_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Study:
    # The organism's base model is a path here: nothing is built.
    monkeypatch.setattr(Study, "base_model", lambda self, prior="aligned": f"/models/{prior}")
    return Study("tiny", root=tmp_path / "runs", figures=tmp_path / "figures")


def test_auto_is_tiny_without_a_gpu_and_unknown_profiles_fail() -> None:
    import torch

    assert resolve_profile("auto") == ("t4" if torch.cuda.is_available() else "tiny")
    with pytest.raises(ValueError, match="unknown profile 'v100'"):
        resolve_profile("v100")


def test_runs_go_to_drive_then_kaggle_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drive, kaggle = tmp_path / "MyDrive", tmp_path / "kaggle-working"
    monkeypatch.setattr(study_runs, "DRIVE_ROOT", drive)
    monkeypatch.setattr(study_runs, "KAGGLE_ROOT", kaggle)
    assert study_module.storage_root("runs") == Path("runs")
    kaggle.mkdir()
    assert study_module.storage_root("runs") == kaggle / "corerl"
    drive.mkdir()
    assert study_module.storage_root("runs") == drive / "corerl"


def test_runs_are_named_by_method_and_prior(tiny_study: Study) -> None:
    assert tiny_study.config("entropy").run_dir == tiny_study.root / "tiny" / "entropy"
    misaligned = tiny_study.config("majority-vote", prior="misaligned")
    assert misaligned.run_dir.name == "majority-vote-misaligned"
    assert (misaligned.model, misaligned.organism_prior) == ("/models/misaligned", "misaligned")


def test_steps_override_the_notebook_and_smoke_overrides_everything(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Study, "base_model", lambda self, prior="aligned": "/models/x")
    assert Study("tiny", root=tmp_path).config("random", max_steps=7).max_steps == 7
    assert Study("tiny", steps=3, root=tmp_path).config("random", max_steps=7).max_steps == 3
    smoke = Study("tiny", steps=30, smoke=True, root=tmp_path)
    config = smoke.config("random", max_steps=7, data_limit=500)
    assert (config.max_steps, config.data_limit) == (
        study_module.SMOKE_STEPS,
        study_module.SMOKE_OVERRIDES["data_limit"],
    )
    assert smoke.runs_dir.name == "tiny-smoke"  # never mistaken for a real run


def test_a_finished_run_is_loaded_not_retrained(tiny_study: Study, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_study.config("entropy")
    (config.run_dir / "final").mkdir(parents=True)
    (config.run_dir / "final" / "model.safetensors").write_bytes(b"")
    (config.run_dir / "config.yaml").write_text(to_yaml(config))
    monkeypatch.setattr("corerl.engine.train", lambda *args, **kwargs: pytest.fail("trained again"))
    assert tiny_study.run("entropy") == config.run_dir


def test_a_final_folder_without_weights_is_resumed(
    tiny_study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    """13.11: ``final/`` without a model (killed while saving) is not a finished run."""
    config = tiny_study.config("entropy")
    (config.run_dir / "final").mkdir(parents=True)
    (config.run_dir / "config.yaml").write_text(to_yaml(config))
    calls = []

    def finishing_train(config, **kwargs):
        calls.append(kwargs)
        (config.run_dir / "final" / "model.safetensors").write_bytes(b"")
        return config.run_dir

    monkeypatch.setattr("corerl.engine.train", finishing_train)
    tiny_study.run("entropy")
    assert calls == [{"resume": True, "dataset": None}]


def test_a_moved_runs_folder_keeps_its_finished_runs(tiny_study: Study, tmp_path, monkeypatch) -> None:
    """13.7: a runs folder moved on Drive (config.yaml names the old place) is still the same run."""
    config = tiny_study.config("entropy")
    (config.run_dir / "final").mkdir(parents=True)
    (config.run_dir / "final" / "model.safetensors").write_bytes(b"")
    moved = dataclasses.replace(config, output_dir="/content/drive/MyDrive/old-place/entropy")
    (config.run_dir / "config.yaml").write_text(to_yaml(moved))
    monkeypatch.setattr("corerl.engine.train", lambda *args, **kwargs: pytest.fail("trained again"))
    assert tiny_study.run("entropy") == config.run_dir


def test_an_interrupted_run_is_resumed(tiny_study: Study, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_study.config("entropy")
    config.run_dir.mkdir(parents=True)
    (config.run_dir / "config.yaml").write_text(to_yaml(config))
    calls = []

    def finishing_train(config, **kwargs):
        calls.append(kwargs)
        (config.run_dir / "final").mkdir()
        (config.run_dir / "final" / "model.safetensors").write_bytes(b"")  # a finished run has weights
        return config.run_dir

    monkeypatch.setattr("corerl.engine.train", finishing_train)
    tiny_study.run("entropy")
    assert calls == [{"resume": True, "dataset": None}]


def test_a_run_stopped_by_its_time_budget_stops_the_notebook_with_a_resume_hint(
    tiny_study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corerl.study import RunInterrupted

    monkeypatch.setattr("corerl.engine.train", lambda config, **kwargs: config.run_dir)  # no final/
    with pytest.raises(RunInterrupted, match="time budget.*run this notebook again"):
        tiny_study.run("entropy")


def test_a_run_made_with_another_config_is_refused(tiny_study: Study) -> None:
    config = tiny_study.config("entropy", max_steps=5)
    (config.run_dir / "final").mkdir(parents=True)
    (config.run_dir / "config.yaml").write_text(to_yaml(config))
    with pytest.raises(ValueError, match="max_steps: 5 -> 9.*RETRAIN"):
        tiny_study.run("entropy", max_steps=9)


def _write_eval(study: Study, model: str, benchmark: str, value: float, n: int = 200) -> None:
    folder = study.runs_dir / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "benchmark": benchmark,
            "model": model,
            "metric": metric,
            "k": 4,
            "temperature": 0.8,
            "value": value if metric == "avg@k" else 0.0,
            "n": n,
        }
        for metric in ("avg@k", "maj@k")
    ]
    pd.DataFrame(rows).to_csv(folder / f"{model}.csv", index=False)


def test_results_table_is_models_by_benchmarks_in_percent(tiny_study: Study) -> None:
    _write_eval(tiny_study, "majority-vote", "organism", 0.3351)
    _write_eval(tiny_study, "base", "organism", 0.5)
    _write_eval(tiny_study, "test-time", "test-time set", 0.25, n=128)
    table = tiny_study.results_table(order=("base", "majority-vote"))
    assert list(table.index) == ["base", "majority-vote", "test-time"]
    assert table.loc["majority-vote", "organism"] == 33.5
    markdown = tiny_study.results_markdown(order=("base",))
    assert "| base | 50.0 |  |" in markdown
    assert "organism: 200 questions, test-time set: 128 questions" in markdown
    assert "k = 4 samples at temperature 0.8" in markdown


def test_results_table_without_evaluations_fails_loudly(tiny_study: Study) -> None:
    with pytest.raises(ValueError, match="no evaluation with metric 'avg@k'"):
        tiny_study.results_table()


def test_evaluate_without_a_trained_model_names_the_run(tiny_study: Study) -> None:
    with pytest.raises(FileNotFoundError, match="no trained model at .*co-rewarding-1"):
        tiny_study.evaluate("co-rewarding-1")


def test_a_cached_evaluation_is_reused_until_the_model_changes(tiny_study: Study, monkeypatch) -> None:
    final = tiny_study.runs_dir / "entropy" / "final"
    final.mkdir(parents=True)
    _write_eval(tiny_study, "entropy", "organism", 0.25)
    calls = []

    def evaluate_model(path, benchmarks, **options):
        calls.append(path)
        table = pd.DataFrame(
            [
                {
                    "benchmark": "organism",
                    "model": "entropy",
                    "metric": "avg@k",
                    "k": 4,
                    "temperature": 0.8,
                    "value": 0.75,
                    "n": 200,
                }
            ]
        )
        return type("Evaluation", (), {"table": table})()

    monkeypatch.setattr("corerl.evaluate.evaluate_model", evaluate_model)
    assert tiny_study.evaluate("entropy")["value"].iloc[0] == 0.25  # cached, the model is older
    cache = tiny_study.runs_dir / "eval" / "entropy.csv"
    os.utime(final, (cache.stat().st_mtime + 10, cache.stat().st_mtime + 10))  # trained again
    assert tiny_study.evaluate("entropy")["value"].iloc[0] == 0.75
    assert calls == [str(final)]


def test_smooth_keeps_steps_and_only_smooths_the_curves() -> None:
    frame = pd.DataFrame(
        {
            "step": [2, 1, 3],
            "method": ["m"] * 3,
            "oracle_accuracy": [1.0, 0.0, 0.5],
            "teacher_alpha": [0.1, 0.2, 0.3],
        }
    )
    smoothed = smooth(frame, window=2)
    assert smoothed["step"].tolist() == [1, 2, 3]
    assert smoothed["oracle_accuracy"].tolist() == [0.0, 0.5, 0.75]
    assert smoothed["teacher_alpha"].tolist() == [0.2, 0.1, 0.3]


def test_seed_runs_are_named_and_the_table_averages_them(tiny_study: Study) -> None:
    assert [tiny_study.seed_name("random", seed) for seed in (0, 1, 2)] == [
        "random",
        "random-seed1",
        "random-seed2",
    ]
    assert tiny_study.config("random", "random-seed1", seed=1).seed == 1
    for model, value in (("random", 0.40), ("random-seed1", 0.50), ("random-seed2", 0.60)):
        _write_eval(tiny_study, model, "organism", value)
    _write_eval(tiny_study, "base", "organism", 0.5)
    table = tiny_study.results_table()
    assert list(table.index) == ["base", "random"] and table.loc["random", "organism"] == 50.0
    assert "| random | 50.0 ± 10.0 (3) |" in tiny_study.results_markdown()
    assert set(tiny_study.results(merge_seeds=True)["model"]) == {"base", "random"}
    assert Study("tiny", smoke=True, root=tiny_study.root).seed_list() == study_module.SEEDS[:2]


def test_seed_metrics_are_the_trained_seeds_frames(tiny_study: Study) -> None:
    import json

    for seed, accuracy in ((0, 0.2), (1, 0.4)):  # seed 2 was never trained: left out
        folder = tiny_study.runs_dir / tiny_study.seed_name("random", seed)
        folder.mkdir(parents=True)
        rows = [{"step": step, "oracle_accuracy": accuracy, "reward_mean": 0.5} for step in (1, 2)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    frames = tiny_study.seed_metrics("random")
    assert [frame["oracle_accuracy"].tolist() for frame in frames] == [[0.2, 0.2], [0.4, 0.4]]
    with pytest.raises(FileNotFoundError, match="no run 'entropy'"):
        tiny_study.seed_metrics("entropy")


def test_heldout_curves_are_long_form_per_method_seed_and_step(tiny_study: Study) -> None:
    import json

    for name, seed, accuracy in (("random", 0, 0.5), ("random", 1, 0.25), ("entropy", 0, 0.75)):
        folder = tiny_study.runs_dir / tiny_study.seed_name(name, seed)
        folder.mkdir(parents=True)
        rows = [
            {"step": 0, "heldout/accuracy": 0.5, "heldout/share/template": 0.0},
            {"step": 1, "reward_mean": 0.5},  # no evaluation at this step
            {"step": 2, "reward_mean": 0.5, "heldout/accuracy": accuracy, "heldout/share/template": 0.1},
        ]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    frame = tiny_study.heldout_curves(["random", "entropy"])
    assert list(frame.columns) == ["method", "seed", "step", "accuracy", "share/template"]
    assert frame[["method", "seed", "step", "accuracy"]].values.tolist() == [
        ["random", 0, 0, 0.5],
        ["random", 0, 2, 0.5],
        ["random", 1, 0, 0.5],
        ["random", 1, 2, 0.25],
        ["entropy", 0, 0, 0.5],
        ["entropy", 0, 2, 0.75],
    ]
    assert tiny_study.heldout_curves("random", eval_set="hard").empty  # no such set was logged


def test_run_together_sends_every_seed_of_every_run_to_one_pool(tiny_study: Study, monkeypatch) -> None:
    sent = []

    def pool(settings, jobs):
        sent.extend(jobs)
        return [tiny_study.runs_dir / job.name for job in jobs]

    monkeypatch.setattr(study_module.training, "train_in_processes", pool)
    jobs = tiny_study.seed_jobs("random") + [tiny_study.job("entropy", name="short-entropy", max_steps=3)]
    folders = tiny_study.run_together(jobs)
    assert [job.name for job in sent] == ["random", "random-seed1", "random-seed2", "short-entropy"]
    assert [job.overrides for job in sent] == [{"seed": 0}, {"seed": 1}, {"seed": 2}, {"max_steps": 3}]
    assert folders == [tiny_study.runs_dir / job.name for job in jobs]
    with pytest.raises(ValueError, match="repeated: random-seed1"):
        tiny_study.run_together([*jobs, tiny_study.seed_jobs("random")[1]])


def test_with_retrain_a_run_is_retrained_once_per_study(tiny_study: Study, monkeypatch) -> None:
    """RETRAIN = True retrains the runs a notebook uses once: a second call in the same session (a cell
    run again, or a run that run_together trained) loads it."""
    calls = []

    def finishing_train(config, **kwargs):
        calls.append(config.run_dir.name)
        (config.run_dir / "final").mkdir(parents=True)
        (config.run_dir / "final" / "model.safetensors").write_bytes(b"")
        (config.run_dir / "config.yaml").write_text(to_yaml(config))
        return config.run_dir

    monkeypatch.setattr("corerl.engine.train", finishing_train)
    retraining = dataclasses.replace(tiny_study, retrain=True)
    retraining.run("entropy")
    retraining.run("entropy")
    retraining.run_together([retraining.job("entropy")])
    assert calls == ["entropy"]
    dataclasses.replace(tiny_study, retrain=True).run("entropy")  # a new Study retrains
    assert calls == ["entropy", "entropy"]


def test_a_gpu_profile_isolates_and_the_child_evaluates_as_the_kernel_does(tiny_model_dir, tmp_path) -> None:
    """The t4 profile evaluates (and trains, samples) in a spawned child process, so that Unsloth's
    class-level patches of an earlier load never reach the evaluation's plain transformers model
    (corerl.study.isolation); the child's results equal the in-process ones (same model, seed, path)."""
    import pandas as pd
    from datasets import Dataset

    from corerl.study import evaluation, isolation

    assert isolation.isolates("t4") and isolation.isolates("a100") and not isolation.isolates("tiny")
    assert isolation.isolates("tiny", True) and not isolation.isolates("t4", False)
    benchmark = {"sums": Dataset.from_dict({"question": ["1 + 1?", "2 + 3?"], "answer": ["2", "5"]})}
    settings = {"k": 2, "batch_size": 4, "max_batch_tokens": 40, "max_new_tokens": 6, "questions": 2}
    tables = {
        isolate: evaluation.evaluate_cached(
            tmp_path / ("child" if isolate else "kernel"),
            "base",
            profile="tiny",
            model=tiny_model_dir,
            benchmarks=benchmark,
            settings=settings,
            seed=3,
            isolate=isolate,
        )
        for isolate in (False, True)
    }
    pd.testing.assert_frame_equal(tables[True], tables[False])
    assert (tmp_path / "child" / "eval" / "base.csv").is_file()
    sampled = {
        isolate: evaluation.sample(
            str(tiny_model_dir), ["1 + 1 ="], n=2, temperature=1.0, max_new_tokens=5, seed=1, isolate=isolate
        )
        for isolate in (False, True)
    }
    assert sampled[True] == sampled[False] and len(sampled[True][0]) == 2


def test_an_exception_in_the_child_process_reaches_the_caller() -> None:
    from corerl.study.isolation import in_child_process

    with pytest.raises(FileNotFoundError, match="model path not found"):
        in_child_process(_load_missing_model)


def _load_missing_model() -> None:
    from corerl.generation import load_model

    load_model("/nonexistent/model", device="cpu")
