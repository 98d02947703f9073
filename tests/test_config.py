"""TrainConfig: profiles, YAML round trip, overrides, clear errors, the shipped configs/ files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from corerl.config import (
    METHODS,
    PROFILES,
    TrainConfig,
    config_differences,
    from_yaml,
    load_config,
    make_config,
    to_yaml,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("method", METHODS)
def test_every_profile_and_method_round_trips_through_yaml(profile: str, method: str) -> None:
    config = make_config(profile, method=method, seed=7, callbacks=["corerl.mitigations:early_stopping"])
    assert config.profile == profile and config.method == method and config.seed == 7
    assert config.callbacks == ("corerl.mitigations:early_stopping",)
    assert from_yaml(to_yaml(config)) == config


def test_profiles_set_the_hardware() -> None:
    tiny, t4, a100 = load_config("tiny"), load_config("t4"), load_config("a100")
    assert tiny.use_cpu and tiny.precision == "fp32" and not tiny.lora and not tiny.use_unsloth
    assert not t4.use_cpu and t4.precision == "fp16" and t4.load_in_4bit and t4.lora and not t4.use_vllm
    assert t4.num_generations == 8 and t4.chat and "\\boxed{}" in t4.prompt_template
    assert a100.precision == "bf16" and a100.questions_per_step > t4.questions_per_step


def test_yaml_file_picks_a_profile_and_overrides_win(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("profile: t4\nmethod: entropy\nmax_steps: 12\n")
    config = load_config(path, max_steps=5, seed=None)
    assert (config.profile, config.method, config.max_steps, config.precision) == ("t4", "entropy", 5, "fp16")


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown method 'vote'"):
        make_config("tiny", method="vote")
    with pytest.raises(ValueError, match="unknown profile 'v100'"):
        load_config("v100")
    with pytest.raises(ValueError, match="unknown config key.*rollouts"):
        make_config("tiny", rollouts=8)
    path = tmp_path / "bad.yaml"
    path.write_text("method: random\nlr: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown config key\(s\) lr"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match=r"num_generations must be in \[2, 1024\]"):
        TrainConfig(num_generations=1)
    with pytest.raises(ValueError, match="prompt_template must contain"):
        TrainConfig(prompt_template="no placeholder")


def test_config_differences_lists_changed_fields() -> None:
    assert config_differences(TrainConfig(), TrainConfig()) == []
    assert config_differences(TrainConfig(max_steps=5), TrainConfig(max_steps=6, seed=1)) == [
        "seed: 0 -> 1",
        "max_steps: 5 -> 6",
    ]


def test_run_dir_defaults_to_method_profile_seed() -> None:
    assert TrainConfig(method="random", seed=3).run_dir == Path("runs/random-tiny-seed3")
    assert TrainConfig(output_dir="somewhere").run_dir == Path("somewhere")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    config = load_config(path)
    assert config.method in METHODS
    assert from_yaml(to_yaml(config)) == config


def test_mitigation_options_are_checked() -> None:
    config = make_config("tiny", offline_labels=True)
    assert config.method == "offline-labels" and from_yaml(to_yaml(config)) == config
    assert make_config("tiny", method="offline-labels", offline_labels=True).method == "offline-labels"
    with pytest.raises(ValueError, match="offline_labels replaces the majority-vote reward.*'entropy'"):
        make_config("tiny", method="entropy", offline_labels=True)
    with pytest.raises(ValueError, match="curriculum_fraction must be in"):
        make_config("tiny", curriculum_fraction=0.0)
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        make_config("tiny", early_stopping=True, validation_fraction=1.0)
    with pytest.raises(ValueError, match="early_stopping_patience must be >= 1"):
        make_config("tiny", early_stopping_patience=0)
    with pytest.raises(ValueError, match="test_time_training cannot use early_stopping"):
        make_config("tiny", test_time_training=True, early_stopping=True)
    with pytest.raises(ValueError, match="test_time_training trains a label-free method"):
        make_config("tiny", method="ground-truth", test_time_training=True)


# ------------------------------------------------------------ types and ranges (issue 13.6)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_steps": "ten"}, "max_steps must be an integer, got 'ten'"),
        ({"num_generations": 2.5}, "num_generations must be an integer, got 2.5"),
        ({"gradient_accumulation_steps": 0}, r"gradient_accumulation_steps must be in \[1, 1024\], got 0"),
        ({"lora": "no"}, "lora must be true or false, got 'no'"),
        ({"callbacks": "os:system"}, "callbacks must be a list of strings, got 'os:system'"),
        ({"data_limit": 0}, "data_limit must be >= 1, got 0"),
        ({"data_limit": -5}, "data_limit must be >= 1, got -5"),
        ({"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
        ({"learning_rate": 0}, r"learning_rate must be in \(0, 1\], got 0"),
        ({"temperature": float("nan")}, "temperature must be a finite number"),
        ({"vllm_gpu_memory_utilization": 1.5}, r"vllm_gpu_memory_utilization must be in \(0, 1\], got 1.5"),
        ({"use_cpu": 1}, "use_cpu must be true or false, got 1"),
        ({"model": 7}, "model must be a string, got 7"),
        ({"time_budget_minutes": "an hour"}, "time_budget_minutes must be a number, got 'an hour'"),
        ({"time_budget_minutes": 0}, "time_budget_minutes must be > 0, got 0"),
        ({"num_iterations": 0}, r"num_iterations must be in \[1, 1024\], got 0"),
        ({"steps_per_generation": 1.5}, "steps_per_generation must be an integer, got 1.5"),
        ({"micro_batch_rollouts": "8"}, "micro_batch_rollouts must be an integer, got '8'"),
        ({"votes_for_seen_questions": "yes"}, "votes_for_seen_questions must be true or false"),
    ],
)
def test_bad_types_and_ranges_fail_when_the_config_is_made(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_config("tiny", **values)


def test_a_yaml_string_number_is_read_as_a_number(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 1e-4\nmax_grad_norm: '2'\n")  # YAML 1.1 reads 1e-4 as text
    config = load_config(path)
    assert config.learning_rate == 1e-4 and config.max_grad_norm == 2.0


def test_every_field_is_type_checked_including_new_ones() -> None:
    """Driven by the annotations: each TrainConfig field (those added later too) refuses a wrong type."""
    for field in dataclasses.fields(TrainConfig):
        with pytest.raises(ValueError, match=rf"\b{field.name} must be"):
            TrainConfig(**{field.name: object()})


def test_the_checks_cover_a_field_they_were_not_written_for() -> None:
    from corerl.config_checks import check_fields

    @dataclasses.dataclass
    class Extended:
        future_budget_hours: float | None = None
        future_passes: int = 1

    assert check_fields(Extended(future_budget_hours="90")) == []
    assert check_fields(Extended(future_budget_hours=-1.0, future_passes=0)) == [
        "future_budget_hours must be >= 0, got -1.0",
        "future_passes must be >= 1, got 0",
    ]


def test_organism_difficulty_sets_the_training_problems_and_is_checked(tmp_path: Path) -> None:
    from corerl.engine.dataset import load_training_data

    hard = load_config("tiny", organism_difficulty="3-4", data_limit=40)
    assert hard.organism_operations == (3, 4)
    rows = load_training_data(hard)
    assert len(rows) == 40 and set(rows["num_ops"]) == {3, 4}
    default = load_training_data(load_config("tiny", data_limit=40))
    assert set(default["num_ops"]) == {1, 2, 3}
    assert set(load_training_data(load_config("tiny", organism_difficulty="2", data_limit=5))["num_ops"]) == {
        2
    }
    for bad, message in (("5", "1..4"), ("hard", "low-high"), ("4-3", "low <= high")):
        with pytest.raises(ValueError, match=message):
            load_config("tiny", organism_difficulty=bad)
    with pytest.raises(ValueError, match="organism data only"):
        load_config("tiny", data="math-train", organism_difficulty="3-4")
    # A config.yaml written before the field existed loads unchanged (the default mix).
    old = tmp_path / "old.yaml"
    old.write_text("method: random\nmax_steps: 7\n")
    assert load_config(old).organism_difficulty is None


@pytest.mark.heldout  # the hard regime adds a held-out set, which needs the profile's eval_every
def test_every_regime_is_a_valid_config_and_changes_one_factor_from_long() -> None:
    from corerl.study.regimes import REGIMES, regime_overrides

    long = regime_overrides("long")
    for name in REGIMES:
        config = load_config("tiny", **regime_overrides(name))
        if name != "default":
            assert config.max_steps >= 8 * PROFILES["tiny"]["max_steps"]
            # the training factor; eval_sets only adds a measurement (the hard regime's held-out slice)
            changed = {
                key
                for key in {**long, **REGIMES[name]}
                if key != "eval_sets" and REGIMES[name].get(key) != long.get(key)
            }
            assert len(changed) <= 1, (name, changed)
    assert load_config("tiny", **regime_overrides("hard")).organism_operations == (3, 4)
    assert (regime_overrides("small")["data_limit"], regime_overrides("large")["data_limit"]) == (128, 2000)
    regime_overrides("long")["max_steps"] = 1  # a copy: the preset is unchanged
    assert REGIMES["long"]["max_steps"] == 400
    with pytest.raises(ValueError, match="unknown regime 'huge'"):
        regime_overrides("huge")


# The groups of the fields (CONFIG_GROUPS): config.yaml is written nested by group; flat files still load.


def test_every_field_has_one_group_and_no_group_is_named_like_a_field() -> None:
    from corerl.config import CONFIG_GROUPS, FIELD_GROUPS, GROUP_FIELDS

    assert set(FIELD_GROUPS) == {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(FIELD_GROUPS.values()) == set(CONFIG_GROUPS)
    assert sorted(name for names in GROUP_FIELDS.values() for name in names) == sorted(FIELD_GROUPS)
    assert not set(CONFIG_GROUPS) & set(FIELD_GROUPS)  # a top-level key is a group or a field, never both
    assert FIELD_GROUPS["learning_rate"] == "optimisation" and FIELD_GROUPS["early_stopping"] == "mitigations"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_config_yaml_is_nested_by_group_and_round_trips(profile: str, tmp_path: Path) -> None:
    import yaml

    from corerl.config import CONFIG_GROUPS, GROUP_FIELDS

    config = make_config(profile, method="co-rewarding-2", seed=3, eval_sets=["hard"], eval_every=5)
    text = to_yaml(config)
    nested = yaml.safe_load(text)
    assert list(nested) == list(CONFIG_GROUPS)
    assert all(list(nested[name]) == list(GROUP_FIELDS[name]) for name in CONFIG_GROUPS)
    assert nested["optimisation"]["learning_rate"] == config.learning_rate
    assert nested["evaluation"]["eval_sets"] == ["hard"]
    assert from_yaml(text) == config
    path = tmp_path / "nested.yaml"
    path.write_text(text)
    assert load_config(path) == config  # the run group's profile picks the preset
    assert load_config(path, learning_rate=2e-6).learning_rate == 2e-6  # flat keyword overrides still win


def test_a_file_may_mix_flat_keys_and_groups(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text("profile: t4\nmethod: entropy\noptimisation:\n  max_steps: 12\n  learning_rate: 1.0e-6\n")
    config = load_config(path)
    assert (config.profile, config.method, config.max_steps, config.learning_rate) == (
        "t4",
        "entropy",
        12,
        1e-6,
    )


def test_an_old_flat_config_yaml_loads_and_resumes(tmp_path: Path) -> None:
    """A run directory written before the groups: its config.yaml is the flat mapping of every field
    (``to_dict``, which is what ``to_yaml`` wrote then), after the commit header."""
    import yaml

    from corerl.config import run_differences, to_dict
    from corerl.engine.run import _check_resume
    from corerl.machine.provenance import commit_header

    config = make_config("tiny", method="random", seed=2, output_dir=str(tmp_path / "run"))
    flat = commit_header("0123abc") + yaml.safe_dump(to_dict(config), sort_keys=False)
    assert "optimisation:" not in flat and "\nlearning_rate: " in flat
    assert from_yaml(flat) == config
    config.run_dir.mkdir()
    (config.run_dir / "config.yaml").write_text(flat)
    _check_resume(config, config.run_dir)  # the resume check accepts it: same run
    assert run_differences(from_yaml(flat), config) == []
    with pytest.raises(ValueError, match="--resume refuses a different config.*seed: 2 -> 3"):
        _check_resume(dataclasses.replace(config, seed=3), config.run_dir)


def test_an_unknown_key_in_a_group_is_named_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("profile: tiny\noptimisation:\n  lr: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown key 'lr' in group optimisation \(its keys: "):
        load_config(path)
    path.write_text("sampling:\n  learning_rate: 0.1\n")
    with pytest.raises(
        ValueError,
        match=r"bad\.yaml: unknown key 'learning_rate' in group sampling.*belongs to group optimisation",
    ):
        load_config(path)
    path.write_text("learning_rate: 0.1\noptimisation:\n  learning_rate: 0.2\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: 'learning_rate' is given twice"):
        load_config(path)
    path.write_text("machine: cpu\n")
    with pytest.raises(
        ValueError, match=r"bad\.yaml: group machine must be a mapping of its fields, got 'cpu'"
    ):
        load_config(path)
    with pytest.raises(ValueError, match=r"config: unknown key 'lr' in group optimisation"):
        from_yaml("optimisation:\n  lr: 0.1\n")
