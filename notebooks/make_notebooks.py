"""Write the numbered notebooks of corerl from the cell texts below (outputs stripped).

    python notebooks/make_notebooks.py            # rewrite notebooks/NN_*.ipynb
    python notebooks/make_notebooks.py --check    # exit 1 when a notebook differs from this script

Edit the notebooks here, not in Jupyter: the notebooks hold narrative and plots, the logic lives in
corerl (``corerl.study`` for the notebook helpers). Every notebook starts with the same parameter cell
(tagged ``parameters``: papermill and ``corerl reproduce`` inject values after it), the same install
cell (skipped when corerl is importable) and the same setup cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
# The GitHub repository the badges and the install cell point to ("owner/name").
REPOSITORY = "OWNER/corerl"
BRANCH = "main"

PARAMETERS = """\
# Parameters: papermill and `corerl reproduce` inject new values in a cell right after this one.
PROFILE = "auto"  # "auto": t4 on a CUDA GPU, else tiny | "tiny": CPU organism, minutes | "t4": Colab/Kaggle T4, real 1.7B model, hours | "a100"
STEPS = None  # optimizer steps per run, None for the profile's: tiny 50, t4 30 (fits a free T4 quota: corerl plan --profile t4); more steps show slower dynamics such as collapse, cost grows linearly
MODEL = None  # base model, hub id or path; None for the profile's: the organism's aligned model, built here once, on tiny; Qwen3-1.7B-Base on t4
SMOKE = False  # True: 2 steps and a few questions everywhere, to check the notebook runs; the numbers then mean nothing
RETRAIN = False  # False: finished runs are loaded, interrupted ones resumed; True: retrain the runs this notebook uses, shared with others
RUNS_DIR = None  # runs, checkpoints, evaluations; None: Google Drive or /kaggle/working when present, which survives a disconnect, else ./runs
FIGURES_DIR = "figures"  # figures are written here as PNG and SVG
SMOOTHING = 10  # training curves are rolling means over this many steps; 1 shows raw values, honest but noisy: a tiny step sees 16 rollouts
EVAL_QUESTIONS = None  # questions per benchmark, None for the profile's: tiny 200, t4 50; more gives tighter numbers and slower evaluation
USE_DRIVE = True  # on Colab: mount Google Drive so checkpoints survive a disconnect; asks permission once
SEED = 0  # one seed for data order, sampling and initialisation"""

# The install cell runs corerl/install.py (standard library only) before corerl exists: its source is
# copied here, so the cell and CI's dry-run check (tests/test_install.py) read the same pins.
INSTALL_SOURCE = (HERE.parent / "corerl" / "install.py").read_text().replace("from __future__ import annotations\n", "")
INSTALL = (
    "# @title Install the pinned stack (Colab / Kaggle; skipped when corerl is already importable)\n"
    "# Keeps the platform's CUDA torch, installs the exact pins (corerl/install.py, copied below), prints\n"
    "# every package it installed and the time taken; no runtime restart unless it says so.\n"
    + INSTALL_SOURCE
    + f"""

if importlib.util.find_spec("corerl") is None:
    install("corerl @ git+https://github.com/{REPOSITORY}.git@{BRANCH}")
if USE_DRIVE and "google.colab" in sys.modules:
    from google.colab import drive

    drive.mount("/content/drive")"""
)

SETUP = """\
%matplotlib inline
import logging

import pandas as pd

from corerl import plots
from corerl.study import Study, describe_hardware, smooth

logging.basicConfig(format="%(message)s")
logging.getLogger("corerl").setLevel(logging.INFO)
study = Study(PROFILE, steps=STEPS, model=MODEL, smoke=SMOKE, retrain=RETRAIN, root=RUNS_DIR, figures=FIGURES_DIR,
              seed=SEED, eval_questions=EVAL_QUESTIONS)
print(f"profile {study.profile}{' (SMOKE: numbers are meaningless)' if SMOKE else ''}; runs in {study.runs_dir}")
print(describe_hardware())"""


def badges(name: str) -> str:
    path = f"{REPOSITORY}/blob/{BRANCH}/notebooks/{name}.ipynb"
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{path}) "
        f"[![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]"
        f"(https://kaggle.com/kernels/welcome?src=https://github.com/{path})"
    )


COMMON_INTRO = (
    "Run all. On a CPU the `tiny` profile trains the model organism (a small arithmetic task and tiny models "
    "built on this machine) in minutes; on a Colab/Kaggle T4 the `t4` profile trains Qwen3-1.7B-Base with "
    "Unsloth QLoRA. Runs that already exist in `RUNS_DIR` are loaded, not retrained."
)

STRATEGY_INTRO = (
    "## Strategy shares\n\nOn the organism every rollout's strategy is recognised from its text "
    "(`corerl.organism.strategies`): a worked solution (lines `a op b = c`, then `\\boxed{}`) whose answer is "
    "right or wrong, a shortcut that boxes the question's first or its last number, no answer, or something "
    "else. The share of each among all rollouts of a step (monitoring only: the ground truth splits "
    "worked-correct from worked-wrong and never reaches a reward), rolling means over `SMOOTHING` steps. "
    "Real datasets have no such classes: the cell is skipped off the organism."
)

NOTEBOOKS: dict[str, tuple[str, list[tuple[str, str]]]] = {}

NOTEBOOKS["00_quickstart"] = (
    "# 00 · Quickstart: label-free RL in one notebook\n\n"
    "Install check, what label-free RL is, answer extraction and voting on real samples, and a short "
    "training run.",
    [
        (
            "code",
            """\
import importlib.metadata

for package in ("torch", "transformers", "trl", "datasets", "peft", "accelerate", "math-verify"):
    print(f"{package:>13} {importlib.metadata.version(package)}")""",
        ),
        (
            "md",
            r"""## What label-free RL is

RL with verifiable rewards (RLVR) samples $G$ answers $y_1..y_G$ per question and rewards each by
$r(y) = 1[\mathrm{ans}(y) \equiv \text{label}]$, where $\mathrm{ans}(y)$ is the content of the last `\boxed{}`.
It needs a label for every question. **Label-free** RL replaces the label with a signal the model makes itself:

* **majority voting** (SRT, TTRL): the label is the most common answer among the $G$ samples;
* **entropy** (RENT) and **self-certainty** (Intuitor): reward confident token distributions;
* **Co-rewarding** adds a second view so the model cannot simply agree with itself: the rephrased question
  (Co-rewarding-I) or a slowly moving EMA teacher (Co-rewarding-II).

These signals first sharpen the model, then can collapse: the reward keeps rising while accuracy falls.
The notebooks 01-06 measure all of this; this one shows the pieces.""",
        ),
        (
            "md",
            "## Answer extraction and voting\n\nCompletions a model could write for real MATH-500 questions "
            "(right, equivalently spelled, wrong and missing answers), extracted and voted:",
        ),
        (
            "code",
            """\
from corerl.answers import answers_match, extract_answer
from corerl.demo import demo_groups
from corerl.voting import majority_vote

rows = []
for group in demo_groups(n_questions=3, group_size=8, seed=SEED):
    answers = [extract_answer(completion) for completion in group["completions"]]
    vote = majority_vote(answers)
    rows.append({"question": group["question"][:60], "truth": group["answer"], "answers": answers,
                 "majority": vote.label, "share": vote.share, "majority correct": answers_match(vote.label, group["answer"])})
pd.DataFrame(rows)""",
        ),
        (
            "md",
            "Now real samples: 8 completions per question from the base model of this profile, at "
            "temperature 1.0 as in training. The reward each completion gets from the ground truth and from "
            "the majority vote: where they differ, the label-free reward is wrong.",
        ),
        (
            "code",
            """\
from corerl.evaluate import load_benchmark
from corerl.rewards import REWARDS

_, questions, _ = load_benchmark(study.benchmarks[0], limit=4)
samples = study.sample(questions["question"], n=8)
rows = []
for row, completions in zip(questions, samples):
    columns = {"prompts": [row["question"]] * len(completions), "completions": completions,
               "id": [row["id"]] * len(completions), "answer": [row["answer"]] * len(completions)}
    rows.append({"question": row["question"][:60], "truth": row["answer"],
                 "answers": [extract_answer(text) for text in completions],
                 "majority-vote reward": REWARDS["majority-vote"](**columns),
                 "ground-truth reward": REWARDS["ground-truth"](**columns)})
print(samples[0][0])
pd.DataFrame(rows)""",
        ),
        (
            "md",
            "## A short training run\n\nMajority-vote GRPO on the profile's training set. Each step logs "
            "the mean reward and, for monitoring only, the oracle accuracy (share of rollouts whose answer "
            "matches the ground truth; never fed back).",
        ),
        (
            "code",
            """\
run_dir = study.run("majority-vote", name="quickstart", max_steps=20 if study.profile == "tiny" else 10)
metrics = study.metrics("quickstart")
metrics[["step", "reward_mean", "oracle_accuracy", "majority_share", "completion_length"]].tail()""",
        ),
        (
            "code",
            """\
plots.plot_training_curves({"majority vote": smooth(metrics, SMOOTHING)}, study.figures, name="00_quickstart_curves",
                           columns=("reward_mean", "oracle_accuracy", "majority_share", "completion_length"))""",
        ),
    ],
)

NOTEBOOKS["01_baselines"] = (
    "# 01 · Baselines: ground truth, majority voting, entropy, self-certainty, random\n\n"
    "The ground-truth reward (RLVR) against the label-free rewards, with the random reward as the control "
    "(Spurious Rewards: random rewards alone can raise some models' scores). Before/after evaluation and "
    "reward and accuracy curves side by side.",
    [
        (
            "code",
            """\
METHODS = ("ground-truth", "majority-vote", "entropy", "self-certainty", "random")
for method in METHODS:
    study.run_seeds(method)  # one run per seed of corerl.study.SEEDS, two at a time on the tiny profile
metrics = {method: study.seed_metrics(method) for method in METHODS}  # every seed's metrics.jsonl""",
        ),
        (
            "md",
            "Mean reward and oracle accuracy per run (rolling means over `SMOOTHING` steps; the raw values are in "
            "each run's `metrics.jsonl`): a rising reward with flat or falling accuracy is "
            "reward hacking. Entropy and self-certainty rewards are negative/continuous, so compare shapes, "
            "not levels. For the ground-truth reward the two curves coincide (its reward is the accuracy).",
        ),
        (
            "code",
            """\
smoothed = {method: study.seed_curves(method, window=SMOOTHING) for method in METHODS}  # mean, ± sd band
plots.plot_reward_vs_accuracy(smoothed, study.figures, name="01_reward_vs_accuracy")""",
        ),
        ("code", 'plots.plot_training_curves(smoothed, study.figures, name="01_training_curves")'),
        ("md", STRATEGY_INTRO),
        (
            "code",
            """\
if study.profile == "tiny":  # strategy shares exist on the organism's data only
    display(plots.plot_strategy_shares(metrics, study.figures, name="01_strategy_shares", window=SMOOTHING))""",
        ),
        (
            "md",
            "## Before and after\n\nThe base model and each trained model on the held-out benchmarks "
            "(avg@k = pass@1 averaged over k samples, maj@k = accuracy of the majority answer).",
        ),
        (
            "code",
            """\
evaluation = pd.concat([study.evaluate_base()] + [study.evaluate_seeds(method) for method in METHODS])  # seeds averaged
evaluation.pivot_table(index="model", columns=["benchmark", "metric"], values="value").round(3)""",
        ),
        ("code", 'plots.plot_eval_results(evaluation, study.figures, name="01_eval")'),
        (
            "md",
            "The strategies of the evaluation samples, base model against each trained one (organism only):",
        ),
        (
            "code",
            """\
if study.profile == "tiny":
    strategies = evaluation[evaluation["metric"].str.startswith("strategy/")]
    display(strategies.pivot_table(index="model", columns="metric", values="value").round(3))
    display(plots.plot_eval_strategy_shares(strategies, study.figures, name="01_eval_strategy_shares"))""",
        ),
    ],
)

NOTEBOOKS["02_co_rewarding_1"] = (
    "# 02 · Co-rewarding-I: two views of each question\n\n"
    "Each question has a rephrased twin with the same answer. The answers to the original are scored by the "
    "majority answer to the rephrasing and vice versa (Co-rewarding, arXiv 2508.00410, Eq. 7), so a model "
    "cannot reward itself for agreeing with itself on one wording.",
    [
        (
            "md",
            "## The shipped rephrasings\n\nMATH train and DAPO-14k ship with the paper's Qwen3-32B rewrites "
            "(validated and cleaned by `corerl rephrase --check-existing`, see `data/rephrase_report.md`).",
        ),
        (
            "code",
            """\
from corerl.data import load_dataset

load_dataset("math-train", limit=3).to_pandas()[["question", "rephrased", "answer"]]""",
        ),
        (
            "md",
            "## Make your own\n\n`corerl rephrase --input my_questions.jsonl --out my_rephrased.jsonl --model "
            "Qwen/Qwen3-4B-Instruct-2507` rewrites every question with an instruction model, validates each "
            "rewrite (markers, numbers kept, not near-identical, length) and keeps rejected rows in a side "
            "file. The organism rephrases with its templates through the same interface:",
        ),
        (
            "code",
            """\
from corerl.cli import main as corerl_cli

exported = study.runs_dir / "rephrase-demo" / "questions.jsonl"
assert corerl_cli(["organism", "export", str(exported), "--n", "20", "--seed", str(SEED)]) == 0
assert corerl_cli(["rephrase", "--input", str(exported), "--out", str(exported.with_name("rephrased.jsonl")),
                   "--model", "organism"]) == 0""",
        ),
        ("md", "## The training views\n\nThe profile's training set with both views:"),
        (
            "code",
            """\
views = study.training_data(study.config("co-rewarding-1")).filter(lambda row: bool(row["rephrased"]))
views.to_pandas()[["question", "rephrased", "answer"]].head(3)""",
        ),
        (
            "md",
            "## Training, and the paper's ablation\n\nCross-view rewards (Co-rewarding-I) against majority "
            "voting on the originals only and on the rephrasings only (paper, Qwen3-8B-Base on MATH-500: "
            "79.8 / 79.2 / 81.2).",
        ),
        (
            "code",
            """\
RUNS = {"cross-view (Co-rewarding-I)": "co-rewarding-1", "originals only": "majority-vote",
        "rephrased only": "majority-vote-rephrased"}
study.run_seeds("co-rewarding-1")
study.run_seeds("majority-vote")
study.run("majority-vote", name="majority-vote-rephrased", dataset=views.map(lambda row: {"question": row["rephrased"]}))
metrics = {label: study.metrics(name) for label, name in RUNS.items()}""",
        ),
        (
            "code",
            """\
plots.plot_training_curves({label: smooth(frame, SMOOTHING) for label, frame in metrics.items()},
                           study.figures, name="02_co_rewarding_1_curves",
                           columns=("reward_mean", "oracle_accuracy", "pseudo_label_accuracy", "reward_accuracy",
                                    "majority_share", "completion_length"))""",
        ),
        ("md", STRATEGY_INTRO + " Co-rewarding-I's shares cover the rollouts of both views."),
        (
            "code",
            """\
if study.profile == "tiny":
    display(plots.plot_strategy_shares(metrics, study.figures, name="02_strategy_shares", window=SMOOTHING))""",
        ),
        (
            "code",
            """\
evaluation = pd.concat([study.evaluate_base()] + [study.evaluate_seeds(name) for name in RUNS.values()])
evaluation.pivot_table(index="model", columns=["benchmark", "metric"], values="value").round(3)""",
        ),
        ("code", 'plots.plot_eval_results(evaluation, study.figures, name="02_co_rewarding_1_eval")'),
    ],
)

NOTEBOOKS["03_co_rewarding_2"] = (
    "# 03 · Co-rewarding-II: an EMA teacher votes the labels\n\n"
    "A teacher, a slowly updated exponential moving average of the policy started from the base model, "
    "samples its own answers to the same questions; their majority is the policy's label. The teacher moves "
    "before it samples, with a cosine rate from 0.01 down to 1e-5.",
    [
        (
            "code",
            """\
from matplotlib.figure import Figure

from corerl.engine.teacher import cosine_alpha

total = study.config("co-rewarding-2").max_steps
config = study.config("co-rewarding-2")
figure = Figure(figsize=(5, 3), layout="constrained")
axis = figure.subplots()
axis.plot(range(total + 1), [cosine_alpha(step, total, config.teacher_alpha_start, config.teacher_alpha_end)
                             for step in range(total + 1)])
axis.set(xlabel="step", ylabel="teacher EMA rate alpha", yscale="log")
plots.save_figure(figure, study.figures, "03_alpha_schedule")
figure""",
        ),
        (
            "md",
            "## Training, and the no-EMA ablation\n\nWithout the EMA update (alpha = 0) the teacher stays the "
            "frozen base model: its labels never improve (paper: pseudo-label accuracy flat near 25%, MATH-500 "
            "78.0 vs 80.6). Majority voting is the reference.",
        ),
        (
            "code",
            """\
RUNS = {"Co-rewarding-II": "co-rewarding-2", "no EMA (frozen teacher)": "co-rewarding-2-no-ema",
        "majority vote": "majority-vote"}
study.run_seeds("co-rewarding-2")
study.run("co-rewarding-2", name="co-rewarding-2-no-ema", teacher_alpha_start=0.0, teacher_alpha_end=0.0)
study.run("majority-vote")
metrics = {label: study.metrics(name) for label, name in RUNS.items()}""",
        ),
        (
            "md",
            "Pseudo-label accuracy (share of question groups whose label matches the ground truth; monitoring "
            "only) over time:",
        ),
        (
            "code",
            """\
plots.plot_training_curves({label: smooth(frame, SMOOTHING) for label, frame in metrics.items()},
                           study.figures, name="03_co_rewarding_2_curves",
                           columns=("pseudo_label_accuracy", "oracle_accuracy", "reward_mean", "reward_accuracy",
                                    "majority_share", "kl"))""",
        ),
        ("md", STRATEGY_INTRO),
        (
            "code",
            """\
if study.profile == "tiny":
    display(plots.plot_strategy_shares(metrics, study.figures, name="03_strategy_shares", window=SMOOTHING))""",
        ),
        (
            "code",
            """\
evaluation = pd.concat([study.evaluate_base()] + [study.evaluate_seeds(name) for name in RUNS.values()])
evaluation.pivot_table(index="model", columns=["benchmark", "metric"], values="value").round(3)""",
        ),
    ],
)

NOTEBOOKS["04_collapse_analysis"] = (
    "# 04 · Collapse analysis\n\n"
    "Rise-then-fall, reward against oracle accuracy, degenerate outputs, the Model Collapse Step "
    "(arXiv 2603.08660), aligned against misaligned priors, and small-set test-time training.",
    [
        (
            "md",
            "## Aligned and misaligned priors\n\nOn the organism the misaligned base model computes every "
            "multiplication as an addition: its confident majority answer is wrong on those problems, so "
            "majority voting rewards the error. (On the `t4` profile the second prior is "
            "Llama-3.2-3B-Instruct, a different model family.)",
        ),
        (
            "code",
            """\
RUNS = {"majority vote, aligned": "majority-vote", "majority vote, misaligned": "majority-vote-misaligned",
        "entropy": "entropy", "self-certainty": "self-certainty"}
study.run("majority-vote")
study.run("majority-vote", prior="misaligned")
study.run("entropy")
study.run("self-certainty")
metrics = {label: study.metrics(name) for label, name in RUNS.items()}""",
        ),
        (
            "md",
            "`detect_collapse` marks the first step where the smoothed oracle accuracy has fallen below its "
            "peak while the smoothed reward kept rising (thresholds are parameters); the Model Collapse Step "
            "is the first step where reward accuracy drops below 1%. Both are computed on the raw metrics; the "
            "curves below are smoothed, the reward-accuracy figure is raw.",
        ),
        (
            "code",
            """\
from corerl.collapse import summarize_run

summaries = {label: summarize_run(frame) for label, frame in metrics.items()}
pd.DataFrame([{"run": label, **summary} for label, summary in summaries.items()])""",
        ),
        (
            "code",
            """\
plots.plot_reward_vs_accuracy({label: smooth(frame, SMOOTHING) for label, frame in metrics.items()},
                              study.figures, name="04_reward_vs_accuracy",
                              collapse_steps={label: summary["collapse_step"] for label, summary in summaries.items()})""",
        ),
        (
            "code",
            """\
voting = {label: frame for label, frame in metrics.items() if label.startswith("majority")}
plots.plot_reward_accuracy(voting, study.figures, name="04_reward_accuracy")""",
        ),
        (
            "md",
            "The study's certainty diagnostic (arXiv 2603.08660's code): per step, the point-biserial "
            "correlation between the label-free reward and the ground-truth reward (monitoring only). Near 1 the "
            "reward still tracks correctness; near 0 or below it no longer does.",
        ),
        (
            "code",
            """\
correlated = {label: smooth(frame, SMOOTHING) for label, frame in metrics.items()
              if "point_biserial" in frame and frame["point_biserial"].notna().any()}
if correlated:  # runs logged before this metric existed have no column: RETRAIN = True draws it for them
    plots.plot_training_curves(correlated, study.figures, columns=("point_biserial",), name="04_point_biserial")
else:
    print("no run logged point_biserial yet: set RETRAIN = True")""",
        ),
        (
            "md",
            "## Degenerate outputs\n\nFrom the logged samples: the same final answer for different questions "
            "(a template answer), repeated n-grams, missing answers.",
        ),
        (
            "code",
            """\
from corerl.collapse import degenerate_outputs

diagnostics = {label: degenerate_outputs(study.samples(name)) for label, name in RUNS.items()}
plots.plot_degenerate_outputs(diagnostics, study.figures, name="04_degenerate_outputs")""",
        ),
        (
            "code",
            """\
last = study.samples("majority-vote-misaligned")
last[last["step"] == last["step"].max()][["question", "completion", "answer_extracted", "reward", "ground_truth"]].head()""",
        ),
        (
            "md",
            "## Small-set test-time training\n\nTTRL trains a label-free method directly on a small unlabelled "
            "test set and evaluates on the same questions; sets of at most 128 questions did not collapse in "
            "arXiv 2603.08660.",
        ),
        (
            "code",
            """\
study.run("majority-vote", name="test-time", data=study.test_data, test_time_training=True)
test_time = study.test_time_results("test-time")  # before/after, on the questions it trained on
test_time.pivot_table(index="model", columns=["benchmark", "metric"], values="value").round(3)""",
        ),
        (
            "code",
            """\
plots.plot_training_curves({"test-time (small set)": smooth(study.metrics("test-time"), SMOOTHING),
                            "majority vote (training set)": smooth(study.metrics("majority-vote"), SMOOTHING)},
                           study.figures, name="04_test_time_training",
                           columns=("reward_mean", "oracle_accuracy", "reward_accuracy", "majority_share"))""",
        ),
        (
            "md",
            STRATEGY_INTRO
            + " On the misaligned prior the worked chains that compute `*` as `+` are worked-wrong.",
        ),
        (
            "code",
            """\
if study.profile == "tiny":
    display(plots.plot_strategy_shares({**metrics, "test-time (small set)": study.metrics("test-time")},
                                       study.figures, name="04_strategy_shares", window=SMOOTHING))""",
        ),
        (
            "md",
            "## An external reward: step-check\n\nThe scaling study (arXiv 2603.08660) expects intrinsic rewards to "
            "collapse and points to *external* label-free rewards, which check a solution against something outside "
            "the model's confidence. `step-check` (our definition, organism only, `corerl.organism.step_check`) pays "
            "1 when every worked line `a op b = c` is right, starts from the question's start value, continues from "
            "the previous result, uses the operation and operand the question states, and the box holds the last "
            "result; it parses the question text, never the answer column. A shortcut without steps gets 0. On the "
            "organism the check is complete, so it is the ground-truth reward restricted to completions that show "
            "their work: does it rise without the fall, beside majority vote and ground truth?",
        ),
        (
            "code",
            """\
if study.profile == "tiny":  # the step check reads organism questions only
    study.run("step-check")
    study.run("ground-truth")
    external = {"step-check (external)": study.metrics("step-check"), "majority vote": study.metrics("majority-vote"),
                "ground truth": study.metrics("ground-truth")}
    display(plots.plot_reward_vs_accuracy({label: smooth(frame, SMOOTHING) for label, frame in external.items()},
                                          study.figures, name="04_external_reward"))
    display(plots.plot_strategy_shares(external, study.figures, name="04_external_strategy_shares",
                                       window=SMOOTHING))
    evaluation = pd.concat([study.evaluate_base()] + [study.evaluate(name)
                                                      for name in ("ground-truth", "majority-vote", "step-check")])
    accuracy = evaluation[evaluation["metric"].isin(["avg@k", "maj@k"])]
    display(accuracy.pivot_table(index="model", columns=["benchmark", "metric"], values="value").round(3))""",
        ),
        (
            "md",
            "## An external reward on real models: self-verification\n\nThe policy, prompted as a verifier "
            "(our prompt, `corerl.engine.verifier.VERIFY_PROMPT`), judges each of its own solutions; the reward is "
            "P(Yes) / (P(Yes) + P(No)) for its next token, 0 without a boxed answer (`self-verify-vote` averages it "
            "with the majority vote). It checks rather than generates, but the checker is the policy itself, so it "
            "can be fooled by what the policy learns to write. `t4`/`a100` only: the organism's model cannot read a "
            "verification prompt. Beside the intrinsic methods above: does it rise without the fall?",
        ),
        (
            "code",
            """\
if study.profile != "tiny":  # the organism's model cannot verify
    study.run("self-verify")
    external = {"self-verify (external)": study.metrics("self-verify"), **metrics}
    display(plots.plot_reward_vs_accuracy({label: smooth(frame, SMOOTHING) for label, frame in external.items()},
                                          study.figures, name="04_self_verify"))""",
        ),
    ],
)

NOTEBOOKS["05_mitigations"] = (
    "# 05 · Mitigations (SRT, arXiv 2505.21444)\n\n"
    "Early stopping on a labelled 1% slice, offline labels voted once by the frozen base model, and the "
    "easy-third curriculum ranked by the base model's majority-answer share.",
    [
        (
            "md",
            "Each mitigation is an option of the same training config (`corerl train --early-stopping`, "
            "`--offline-labels`, `--curriculum 0.33`), applied by `corerl.engine.mitigations`.",
        ),
        (
            "md",
            "## Early stopping\n\nThe only place a label-free run reads labels: 1% of the training set is "
            "held out (5% on the tiny profile) and scored greedily every `early_stopping_eval_steps` steps; each new best is "
            "checkpointed and training stops after `early_stopping_patience` evaluations without one.",
        ),
        (
            "code",
            """\
import json

# SRT holds out 1%: 75 MATH questions, but only 5 of the organism's 512, too few to rank checkpoints.
study.run("majority-vote", name="early-stopping", early_stopping=True,
          validation_fraction=0.05 if study.profile == "tiny" else 0.01)
stopping = json.loads((study.runs_dir / "early-stopping" / "early_stopping.json").read_text())
print(f"best validation accuracy {stopping['best_score']:.3f} at step {stopping['best_step']}; "
      f"stopped at {stopping['stopped_at']}")
pd.DataFrame(stopping["history"])""",
        ),
        (
            "md",
            "## Offline labels\n\nThe frozen base model votes once per training question; training then "
            "rewards agreement with those fixed labels. How often the labels are right (monitoring only):",
        ),
        (
            "code",
            """\
from corerl.answers import answers_match

study.run("majority-vote", name="offline-labels", offline_labels=True)
votes = json.loads((study.runs_dir / "offline-labels" / "offline_labels.json").read_text())["votes"]
questions = study.training_data(study.config("majority-vote"))
truth = dict(zip(questions["id"], questions["answer"]))
right = [answers_match(vote["label"], truth[vote["id"]]) for vote in votes]
print(f"{len(votes)} questions voted, offline-label accuracy {sum(right) / len(right):.3f}")""",
        ),
        (
            "md",
            "## Curriculum\n\nThe easiest third of the training set by the base model's majority share "
            "(label-free, 32 samples per question at temperature 1.0):",
        ),
        (
            "code",
            """\
study.run("majority-vote", name="curriculum", curriculum_fraction=1 / 3)
shares = json.loads((study.runs_dir / "curriculum" / "curriculum_votes.json").read_text())["votes"]
pd.Series([vote["share"] for vote in shares]).describe()""",
        ),
        (
            "md",
            "Training curves: oracle and reward accuracy are measured on each run's own training questions, "
            "so the curriculum (the easiest third) starts higher by construction; compare the evaluation below.",
        ),
        (
            "code",
            """\
RUNS = {"majority vote": "majority-vote", "early stopping": "early-stopping", "offline labels": "offline-labels",
        "curriculum": "curriculum"}
study.run("majority-vote")
metrics = {label: study.metrics(name) for label, name in RUNS.items()}
plots.plot_training_curves({label: smooth(frame, SMOOTHING) for label, frame in metrics.items()},
                           study.figures, name="05_mitigations_curves",
                           columns=("reward_mean", "oracle_accuracy", "reward_accuracy", "majority_share"))""",
        ),
        ("md", STRATEGY_INTRO),
        (
            "code",
            """\
if study.profile == "tiny":
    display(plots.plot_strategy_shares(metrics, study.figures, name="05_strategy_shares", window=SMOOTHING))""",
        ),
        ("md", "Evaluation (early stopping: its best checkpoint):"),
        (
            "code",
            """\
from corerl.mitigations.early_stopping import evaluation_model

print(f"early stopping is evaluated at {evaluation_model(study.runs_dir / 'early-stopping')}")
evaluation = pd.concat([study.evaluate_base(), study.evaluate("majority-vote"),
                        study.evaluate("early-stopping"), study.evaluate("offline-labels"),
                        study.evaluate("curriculum")])
plots.plot_eval_results(evaluation, study.figures, name="05_mitigations_eval")""",
        ),
    ],
)

NOTEBOOKS["06_results"] = (
    "# 06 · Results\n\n"
    "Every evaluated run of this profile in one table (the papers' layout: methods x benchmarks), written to "
    "`figures/results.md`, and the final figures. Run 01-05 first (or `corerl reproduce`).",
    [
        (
            "code",
            """\
ORDER = ("base", "ground-truth", "majority-vote", "entropy", "self-certainty", "random", "co-rewarding-1",
         "co-rewarding-2", "majority-vote-rephrased", "co-rewarding-2-no-ema", "early-stopping", "offline-labels",
         "curriculum", "base-test-time", "test-time")
study.results_table(order=ORDER)""",
        ),
        (
            "code",
            """\
markdown = study.results_markdown(order=ORDER)
study.figures.mkdir(parents=True, exist_ok=True)
(study.figures / "results.md").write_text(markdown)
print(markdown)""",
        ),
        (
            "code",
            """\
MAIN = ("base", "ground-truth", "majority-vote", "entropy", "self-certainty", "random", "co-rewarding-1",
        "co-rewarding-2")
results = study.results(merge_seeds=True)  # a run's seeds are averaged
main_results = pd.concat([results[results["model"] == name] for name in MAIN])  # bars in MAIN's order
plots.plot_eval_results(main_results, study.figures, name="06_results")""",
        ),
        (
            "code",
            """\
trained = [name for name in MAIN[1:] if (study.runs_dir / name / "metrics.jsonl").is_file()]
plots.plot_training_curves({name: study.seed_curves(name, window=SMOOTHING) for name in trained}, study.figures,
                           name="06_training_curves",
                           columns=("reward_mean", "oracle_accuracy", "pseudo_label_accuracy", "reward_accuracy"))""",
        ),
        (
            "md",
            """## Quoted from the Co-rewarding paper (not measured here)

MATH-500 / GSM8K / AMC, trained on MATH; pass@1 on MATH-500 and GSM8K, avg@8 on AMC, temperature 0.8
(arXiv 2508.00410). These are the paper's numbers, for comparison with the `t4`/`a100` profiles only: the
`tiny` profile is a different task.

| | Qwen3-8B-Base | Llama-3.2-3B-Instruct | Qwen3-1.7B-Base (Table 7) |
|---|---|---|---|
| before RL | 72.4 / 27.82 / 20.93 | 39.2 / 65.73 / 10.54 | 57.0 / 19.6 / - |
| GT reward | 82.6 / 87.26 / 54.22 | 47.0 / 77.94 / 22.14 | 69.6 / 81.6 / - |
| majority voting | 79.8 / 89.76 / 49.09 | 46.8 / 78.77 / 20.48 | 65.2 / 81.6 / - |
| entropy | 80.2 / 87.19 / 49.54 | 43.4 / 66.19 / 20.18 | 63.6 / 71.8 / - |
| self-certainty | 80.2 / 80.74 / 50.75 | 43.4 / 74.91 / 18.83 | 58.2 / 40.3 / - |
| Co-rewarding-I | 81.2 / 93.70 / 51.20 | 50.2 / 79.45 / 23.80 | 67.6 / 83.0 / - |
| Co-rewarding-II | 80.8 / 92.42 / 53.46 | 49.8 / 79.30 / 22.59 | - |""",
        ),
    ],
)


def cell_id(name: str, index: int) -> str:
    return f"{name[:2]}-{index:02d}"


def build(name: str) -> nbformat.NotebookNode:
    title, cells = NOTEBOOKS[name]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
        "colab": {"provenance": [], "gpuType": "T4"},
    }
    header = [
        ("md", f"{title}\n\n{badges(name)}\n\n{COMMON_INTRO}"),
        ("parameters", PARAMETERS),
        ("code", INSTALL),
        ("code", SETUP),
    ]
    for index, (kind, source) in enumerate(header + cells):
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell.id = cell_id(name, index)
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a notebook differs")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        text = nbformat.writes(build(name)) + "\n"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python notebooks/make_notebooks.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
