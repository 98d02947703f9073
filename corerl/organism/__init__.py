"""A model organism: a synthetic arithmetic task and tiny base models trained on CPU (organism v2).

The whole study (every method, collapse included) runs on it in minutes on a laptop CPU:

- ``make_dataset(n, seed=, difficulty=, split=)``: problems in the schema of the real datasets
  (``id``, ``question``, ``rephrased``, ``answer``, plus ``forms``, ``expression``, ``operations``,
  ``num_ops``); train and test splits never share a problem (``corerl.arithmetic.task``);
- ``format_prompt(question)``: the model input, plain text ``"Problem: {question}\\nSolution:\\n"``;
- ``ensure_base_model(prior)``: the cached base model, ``"aligned"``, ``"misaligned"`` or
  ``"illusion"``, built on first call in two stages (``corerl.organism.build``);
- ``measure_prior(model_dir)``: pass@1, maj@8, majority share and label accuracy on held-out problems.

The task itself (problems, datasets, strategies, the step check) is ``corerl.arithmetic``, on the bottom
layer so that rewards, config and evaluation read it without loading this package; its public names
are re-exported here.

Design (fixed with the ground-truth and random rewards only, before any label-free run; issue 11)
--------------------------------------------------------------------------------------------------
The premise of the seed papers is that RL with an intrinsic reward *sharpens* a distribution the base
model already has. Organism v1 had no such distribution (one under-trained strategy), and every
reward, ground truth included, lowered held-out accuracy. Organism v2 builds the premise in, openly:
the base model is a *mixture of strategies* learned by SFT, and RL can only move weight between them.

- **Strategies** (the formats are the contract with ``corerl.arithmetic.strategies``): a worked solution
  (one line per operation, then ``\\boxed{answer}``: the real skill), two shortcuts that answer without
  the work, ``\\boxed{first number stated}`` and ``\\boxed{last number stated}``, and a low-rate
  template ``\\boxed{0}``. The model picks its strategy at the first token (a digit or ``\\boxed``).
- **Shortcuts of the kind real models have**: copying a number from the question, so their value
  depends on the surface form. The ``rephrased`` twin (Co-rewarding-I's second view) narrates the
  operations backwards, so the first and the last number swap between the views: a shortcut is
  self-consistent within one phrasing and disagrees across the two.
- **Shares** (stage 2 SFT targets): worked 0.60, shortcut-first 0.175, shortcut-last 0.175, template
  0.05. Reasons: (i) the vote must carry information (aligned maj@8 >= pass@1 + 5 points): each
  shortcut's share must stay well below the worked-correct share (0.6 x worked accuracy), since the
  probe (``shared/notes/organism-probe.md``) found that a 50% consistent shortcut wins the vote from
  step 1; (ii) the shortcuts together must be common enough (40%) that selecting the worked strategy
  is worth more than 10 points, the ground-truth target; (iii) the template is rare (5%), a degenerate
  answer shared by every question, as real models sometimes emit. Measured shares of the built aligned
  model (two-thread build; 200 held-out questions x 8 samples, T = 1, ``benchmarks/organism.py``):
  worked 55% (77% of it correct), shortcut-first 17%, shortcut-last 4.5%, other 23% (the template and
  mis-copied shortcut numbers: the shortcut scatters somewhat, which a real shortcut does too);
  pass@1 43.5, maj@8 71.5. (The one-thread build of v2: worked 60%, shortcut-first 11%, shortcut-last
  9%, other 19%; pass@1 46.1, maj@8 71.0: the same SFT targets, learnt differently.)
- **Misaligned prior**: the same mixture, but its worked solutions compute ``*`` as ``+``, except a
  minority (``misaligned_correct_share`` = 0.35 of the worked targets) that are correct, so ground truth
  has correct rollouts to reinforce while the vote reinforces the error. The share was calibrated on the
  ground-truth reward alone (issue 11: ground truth must raise accuracy on the problems with a
  multiplication; ``benchmarks/organism_rl.py --prior misaligned --methods ground-truth --seeds 3``,
  held-out pass@1 on those problems, 8 samples at T = 1, base -> final, mean ± sd of 3 seeds):

  | correct share | base | ground truth | base maj@8 on them |
  |---|---|---|---|
  | 0.2 (v2 as first landed; two-thread build) | 6.4 | 7.7 ± 3.1 | 6.9 |
  | **0.35** | **9.2** | **13.1 ± 2.5** | **9.0** |

  At 0.2 the repair was within the seeds' noise; at 0.35 (the only other share tried) it shows, and
  0.35 is still a minority (the base's majority answer is right on 9% of those problems). Measured on
  the built prior (seed-0 sampling, 80 held-out problems with a multiplication): 9.5% of the samples
  are worked-correct, 48.1% worked-wrong, and the majority answer is right on 12.5%. Said openly:
  this change came after majority vote had been run on the 0.2 prior (43.7 ± 0.6, its pseudo-labels on
  those problems <= 5.8% correct); majority vote was then run once on the 0.35 prior, and docs/organism.md
  reports both.
- **Two stages**: stage 1 trains a strong worked skill from scratch (worked-only SFT, 1,500 steps,
  shared by both priors and cached); stage 2 is a short mixture fine-tune per prior (300 steps at lr
  1e-3). The probe found that a from-scratch mixture of <= 4.5 minutes learns a weak worked skill
  (13-22% accurate, ground-truth gain +2-5 points), while a trained worked model plus a short mixture
  stage was enough. Model: Qwen3 config, hidden 96, 3 layers, 4 heads, vocabulary 512 (0.5M
  parameters), unchanged from v1; ``BuildSettings.version = 2`` changes the cache key. The build runs
  on two torch threads (``BuildSettings.threads``; v2 as first landed used one): the same design and
  data, numerically a different model (as another thread count always gives), built in 267 s instead of
  619 s (aligned prior, idle 2-core machine).

Third prior ``illusion``: a self-consistent wrong answer (issue 21; pre-registered)
------------------------------------------------------------------------------------
Written and committed before any label-free run on this prior (the commit history is the record;
every run records the commit it ran from). On today's priors each shortcut is <= 17.5% of the samples
and scatters, so no wrong answer wins votes in quantity and every reward tracks ground truth (the
second probe in ``shared/notes/organism-probe.md``). The papers describe a wrong answer consistent
enough within a group to win the vote. The illusion prior builds two, of two kinds:

- a **view-dependent shortcut**: ``\\boxed{first number stated}`` only (no shortcut-last). It is
  consistent within one phrasing and differs across the two views, because the ``rephrased`` twin
  states the numbers backwards (its first number is the last operand). Pre-registered cross-view
  agreement of the shortcut's answer: on the held-out default mix the first number of the story
  equals the first number of its twin on **5.3%** of problems (2,000 problems; 4.4-6.0% for 1-4
  operations: start value = last operand), so a pure shortcut-first agrees across views on ~5%. On
  today's aligned and misaligned priors shortcut-first on one view gives the same answer as
  shortcut-last on its twin on **100%** of problems, so there the cross-view vote can back the hack.
  Prediction for the built base model (``benchmarks/organism.py --priors illusion``, the plurality
  shortcut answer of each view, problems where both views have one): <= 15% agreement (5.3% plus
  mis-copied numbers and any shortcut-last the model makes up);
- the **view-independent template** ``\\boxed{0}``: the same in every view and every question.

**Shares depend on the number of operations** (``BuildSettings.shares_by_ops``; worked,
shortcut-first, shortcut-last, template), as a model gives up more often on longer problems:

| operations | worked | shortcut-first | shortcut-last | template |
|---|---|---|---|---|
| 1 | 0.80 | 0.10 | 0 | 0.10 |
| 2 | 0.60 | 0.20 | 0 | 0.20 |
| 3 | 0.40 | 0.30 | 0 | 0.30 |
| 4 | 0.30 | 0.35 | 0 | 0.35 |

Stage 2 of this prior runs on one torch thread (``BuildSettings.mixture_threads``; added after the
design commit, before any run: on this shared 2-core machine, load 10-14, a two-thread mixture step
took 11-18 s, so the build would have taken an hour; the design is unchanged).

On the default 1-3 mix this averages to the aligned prior's worked share (0.6) with the other 0.4
split evenly between the two illusions. Why: on 1-2 operations the worked strategy (stage-1 accuracy
high) holds the plurality, so the vote carries information at the start (maj@8 > pass@1) and a rise is
possible; on 3 operations each illusion is as common as the worked strategy, whose accuracy is lower,
so the illusion wins the vote on part of the task. Since the strategy is chosen at the first token with
weights shared across questions, a reward that backs the illusion on 3-operation questions can spread
it to the others: a fall after the rise is possible. The 4-operation row is read only by a build
whose ``difficulty`` includes 4 (the default build trains 1-3, so the hard regime's 4-operation
problems are out of the SFT distribution, as the hard DAPO set is for SRT's base model).

Criteria (calibrated on the ground-truth and random rewards and base-model statistics only):
(C1) base held-out maj@8 > pass@1 (200 problems x 8 samples, T = 1, ``benchmarks/organism.py``);
(C2) the illusion wins votes on part of the task: the base's majority answer is the shortcut or the
template on >= 25% of held-out 3-operation problems; (C3) ground truth >= base + 10 points held-out
avg@4 and (C4) random within 5 points of base, mean of 3 seeds, 50 steps, tiny defaults
(``benchmarks/organism_rl.py --prior illusion --methods ground-truth,random --seeds 3``); (C5) build
<= 5 minutes (stage 1 + stage 2 on an idle 2-core machine; on a shared one <= 600 CPU seconds).
If a criterion fails, the shares are changed and the change documented here before any label-free
run: C1 fails -> every illusion share x 0.75 (the rest to worked); C2 fails -> the 3-operation row to
(0.3, 0.35, 0, 0.35); C3 fails -> the illusions x 1.25; C4 is a property of the RL settings, not the
prior (recalibrate the learning rate on ground truth and random only).

Measured on the built prior (``python benchmarks/organism.py --priors illusion``; 200 held-out problems
x 8 samples at T = 1, seed 0; build record: stage 1, shared with the other priors, 889 s wall / 397 CPU
seconds on the loaded machine, 221 s idle as measured for v2; stage 2 339 s wall / 92 CPU seconds on
one thread; 489 CPU seconds in all, C5 met on the CPU measure; about 313 s idle wall, an estimate from
the two records, so a fresh build on an idle machine is at the 5-minute line):

- pass@1 36.4, maj@8 48.0 (C1 met); strategies: worked-correct 35.2%, worked-wrong 16.9%,
  shortcut-first 27.9%, shortcut-last 0%, other (the template, mostly) 19.9%: the learnt shortcut share
  is above its 0.2 target and the worked share below its 0.6 (52%; 68% of it correct);
- per number of operations (first view): 1 operation pass@1 60.8, maj@8 85.1, majority is the template
  or a shortcut on 8.1% of problems; 2: 33.0, 47.5, 50.8%; 3: 12.3, 6.2, **95.4%** (C2 met, by far:
  the illusion holds the vote on almost every 3-operation problem and half of the 2-operation ones);
- across the two views: the plurality shortcut answers agree on **5.6%** of the 143 problems with a
  shortcut in both views (pre-registered <= 15%, text-level 5.3%); the majority labels agree on 42.5%
  of problems, and agree while wrong on 9.0% (what the cross-view vote can reinforce: the template).

Calibration on ground truth and random only (``python benchmarks/organism_rl.py --prior illusion
--methods ground-truth,random --seeds 3``, run from commit a83d500; tiny defaults, 50 steps; held-out
avg@4 at T = 0.8 on 200 problems, mean ± sd of 3 seeds; shares: 8 samples at T = 1, base -> final,
mean of 3 seeds; 1,163 s for the 6 runs, two at a time, on the loaded machine):

| method | base | final | finals | worked-correct | worked-wrong | shortcut-first | other (template) |
|---|---|---|---|---|---|---|---|
| ground-truth | 40.1 | **56.6 ± 0.5** (+16.5, C3 met) | 56.1 56.6 57.1 | 34.5 -> 49.5 | 17.5 -> 30.0 | 27.8 -> 13.2 | 20.1 -> 7.2 |
| random | 40.1 | **35.7 ± 3.3** (-4.4, C4 met) | 39.4 33.2 34.4 | 34.5 -> 31.4 | 17.5 -> 16.0 | 27.8 -> 30.6 | 20.1 -> 21.9 |

Every criterion met on the first design: no share was changed. Random's loss (-4.4) is close to the
5-point line; ground truth moves weight off both illusions onto the worked strategy (its worked-wrong
share grows too: RL selects the strategy, it does not teach arithmetic).

Predictions on the illusion prior (default regime 50 steps, and the long horizon below):

- **SRT** (majority vote): the vote rewards the plurality answer, the illusion on 3-operation
  questions; it then spreads and the vote collapses onto a consistent answer (template or shortcut):
  rise then fall, final held-out accuracy below base over the long horizon, majority vote below ground
  truth by >= 5 points at 50 steps, template + shortcut share rising.
- **Co-rewarding-I** (cross-view vote): the view-dependent shortcut agrees across views on ~5% of
  problems, so the cross-view label rarely rewards it: its shortcut share falls as under ground truth.
  The template is identical in both views, so it is rewarded as under majority vote: the paper claims
  no resistance to a view-independent hack, and we predict none (template share rising like majority
  vote's). Net: Co-rewarding-I >= majority vote held-out, shortcut share well below majority vote's.
- **Co-rewarding-II** (EMA teacher, same view): the teacher's vote backs both illusions where the
  base's vote does (no view protection), but its slow EMA (0.01 -> 1e-5) keeps its labels near the
  base's, which are right on most 1-2-operation questions: the self-reinforcing spread is delayed.
  Prediction: no collapse at 50 steps; over the long horizon a later and smaller fall than majority
  vote's (the paper: the EMA teacher resists collapse).
- **Co-rewarding-III** (``co-rewarding-3``: both views and the EMA teacher): resists the shortcut
  (views) and delays the template (EMA); predicted the best label-free method here, still below
  ground truth where the template wins the teacher's vote.
- **Entropy** (RENT, mean token entropy): blind to answers and views. The choice at the first token is
  the one uncertain token of every strategy; its weight in the mean is 1/5 in a template completion and
  about 1/30 in a worked one, so the mean favours the long, near-deterministic worked solutions (as on
  the aligned prior, where entropy tracked ground truth). Prediction: entropy does not move to the
  illusions at 50 steps; over the long horizon it sharpens whatever strategy is most confident.
- **The scaling study** (arXiv 2603.08660, sharpening): every intrinsic reward sharpens the initial
  distribution; it helps where confidence agrees with correctness (1-2 operations) and hurts where it
  does not (3 operations, where the illusion holds the vote): held-out accuracy on 1-operation problems
  rises while on 3-operation problems it falls; on a large training set the net is rise then fall and
  majority vote's Model Collapse Step is reached; a small set (<= 128) does not collapse.

Label-free runs on the illusion prior (issue 21, after the calibration commit 39a3806; run from it)
----------------------------------------------------------------------------------------------------
``python benchmarks/organism_rl.py --prior illusion --methods majority-vote,co-rewarding-1 --seeds 3
--jobs 3``: default regime, tiny defaults, 50 steps; held-out avg@4 (T = 0.8, 200 problems) at steps
25 and 50, mean ± sd of 3 seeds; strategy shares from 8 samples at T = 1, base -> final, mean of 3
seeds (ground truth and random from the calibration above, for comparison); 600 s for the 6 runs:

| method | base | step 25 | step 50 | worked-correct | worked-wrong | shortcut-first | other (template) |
|---|---|---|---|---|---|---|---|
| ground-truth | 40.1 | 50.3 | 56.6 ± 0.5 | 34.5 -> 49.5 | 17.5 -> 30.0 | 27.8 -> 13.2 | 20.1 -> 7.2 |
| majority-vote | 40.1 | 38.4 | 38.2 ± 0.8 | 34.5 -> 33.6 | 17.5 -> 16.5 | 27.8 -> **31.6** | 20.1 -> 18.3 |
| co-rewarding-1 | 40.1 | 45.1 | **50.8 ± 0.9** | 34.5 -> 43.6 | 17.5 -> 24.9 | 27.8 -> **16.0** | 20.1 -> 15.4 |
| random | 40.1 | 37.2 | 35.7 ± 3.3 | 34.5 -> 31.4 | 17.5 -> 16.0 | 27.8 -> 30.6 | 20.1 -> 21.9 |

Training rollouts on the problems with a multiplication (10-step means, first -> last): majority
vote's pseudo-label accuracy 32.2 -> 16.7, Co-rewarding-I's 40.0 -> 38.8.

Against the predictions: SRT's (majority vote below ground truth by >= 5 at 50 steps; the consistent
shortcut gains) held: -18.4 points, shortcut 27.8 -> 31.6, and its pseudo-labels got worse. No rise
came first (step 25 already below base at this resolution), and at 50 steps majority vote's loss (-1.9)
is within the random control's (-4.4): a fall is not shown yet. Co-rewarding-I's (the cross-view vote
does not back the view-dependent shortcut) held: its shortcut share fell almost as under ground truth
(16.0 vs 13.2) and it ends 12.6 points above majority vote, +10.7 over base. The prediction that the
template would rise under both votes did not hold at 50 steps: the template (``other``) fell under
every reward but random (18.3 majority vote, 15.4 Co-rewarding-I). Co-rewarding-II, -III and entropy:
not run yet.

A probe, not the regime's result (one seed; the long horizon's random control is not run yet):
``python benchmarks/organism_rl.py --prior illusion --regime long --methods
ground-truth,majority-vote,co-rewarding-1 --seeds 1 --jobs 3 --eval-every 100`` (400 steps over 512
problems, about 3 epochs; run from 39a3806; 731 s). Held-out avg@4 at steps 0 / 100 / 200 / 300 / 400,
and the final strategy shares (8 samples at T = 1):

| method | held-out avg@4 | worked (correct + wrong) | shortcut-first | other (template) |
|---|---|---|---|---|
| ground-truth | 39.9 / 59.8 / 61.8 / 63.5 / 64.2 | 58.8 + 38.4 | 2.2 | 0.5 |
| majority-vote | 39.9 / 40.3 / 34.8 / 9.8 / **4.6** | 3.6 + 1.0 | 34.7 | **60.6** |
| co-rewarding-1 | 39.9 / 54.9 / 60.8 / 61.4 / 61.2 | 57.4 + 40.8 | 1.1 | 0.8 |

Training rollouts in 50-step windows (majority vote): accuracy 33.8, 35.6, 34.4, 28.9, 20.2, 8.8, 7.1,
3.3; template-or-other share 22.6 -> 66.5; completion length 14.4 -> 6.3 tokens. Majority vote
collapses onto the two consistent answers, the template most (SRT's collapse, and the scaling study's
"short outputs with a template answer"), after a flat start (+0.4 at step 100: within noise, no clear
rise). Co-rewarding-I does not collapse: it tracks ground truth (61.2 vs 64.2) and drives both
illusions out, the view-independent template included: the prediction that it would not resist the
template did not hold here (the base's two views agree on a wrong majority on only 9% of problems,
so the cross-view label rarely is the template).

Study regimes (issue 21; pre-registered with the prior, before any label-free run)
-----------------------------------------------------------------------------------
Named presets of ``TrainConfig`` overrides (``corerl.study.regimes.REGIMES``; ``--regime`` of
``benchmarks/organism_rl.py``). The training set's size is ``data_limit`` (the organism generates that
many problems; default 512), its difficulty ``organism_difficulty`` (number of operations,
``"3-4"``; default: the 1-3 mix). Every other setting is the tiny profile's (lr 1e-5 constant after 5
warm-up steps, 4 questions x 8 rollouts, beta 0). Held-out evaluation on the default mix (200 problems)
and, as registered, for every regime a hard slice (200 held-out problems of 3-4 operations:
``heldout_hard/...``). As run: only ``hard`` logs the hard slice (``eval_sets``); the long, small and
large grids were saved without it, and adding it afterwards would split each grid across two settings.

| regime | steps | training problems | operations | epochs | condition |
|---|---|---|---|---|---|
| default | 50 | 512 | 1-3 | 0.4 | today's study |
| long | 400 | 512 | 1-3 | 3.1 | long horizon over a fixed set (SRT: several epochs) |
| hard | 400 | 512 | 3-4 | 3.1 | SRT's hard-set condition (one factor changed from long) |
| small | 400 | 128 | 1-3 | 12.5 | scaling study: <= 128 questions do not collapse |
| large | 400 | 2,000 | 1-3 | 0.8 | scaling study: large sets collapse |

If the random reward drifts more than 5 points over 400 steps at lr 1e-5, the long horizon is
recalibrated on ground truth and random only (candidates 5e-6, 2.5e-6), both calibrations kept here.
Measured (2026-12-06, illusion prior, 3 seeds, ``figures/regimes.md``): at lr 1e-5 ground truth
40.1 -> 64.6 ± 1.1, random 40.1 -> 35.0 ± 2.4 (-5.1: over the line); at lr 5e-6 ground truth 63.7 ± 1.3
(+23.6), random 37.3 ± 0.8 (-2.8): 5e-6 meets both criteria and is the long horizon's calibrated rate.
The same on the other priors (3 seeds): aligned, 1e-5 ground truth +26.0, random -5.1; 5e-6 +25.5, -1.0;
misaligned, 1e-5 +21.4, -3.6; 5e-6 +17.9, -0.5.
``REGIMES`` keeps 1e-5 so that the grid saved at 1e-5 stays one setting; the 5e-6 runs pass
``--set learning_rate=5e-6`` and are named ``<method>-lr5e-6``.
Predictions: **long**: on aligned no collapse (its illusions die out under every reward: probe 2); on
misaligned majority vote falls on the multiplication problems; on illusion majority vote collapses
(rise then fall by the collapse rule), Co-rewarding-I keeps the shortcut down and not the template,
Co-rewarding-II falls later. **hard**: on illusion the 3-4-operation problems are where the illusion
wins the vote, so majority vote falls sooner and further than in long (SRT's hard set: early
collapse), ground truth gains less. **small vs large**: majority vote's drop from its peak is smaller
on 128 problems than on 2,000 (the scaling study); with 400 steps the large set is seen 0.8 times.
**Early stopping where a peak exists** (registered 2026-12-06, after the grid above showed where
label-free curves peak and before any early-stopped run): SRT's early stopping (Sec. 5.1) on the two
conditions whose held-out curve rose and then fell by the collapse rule: entropy on illusion/long at
lr 1e-5 (peak 61.8 at step 150, final 50.6; 3 seeds) and majority vote on illusion/large (peak 43.5 at
step 150, final 13.6; 2 seeds), ``--set early_stopping=true --set early_stopping_eval_steps=25 --set
validation_fraction=0.1``, patience 3 (the default). Departure: SRT holds out 1% of its training set
(about 170 DAPO questions); 1% of 512 problems is 5, too few to rank checkpoints, so the slice is 10%
(51 problems; 200 of the large set). Prediction (SRT: the validation peak coincides with the test
peak): each run stops before step 400 and hands over a checkpoint whose held-out avg@4 (seed mean) is
within the plain run's spread of its peak and above its final.
Budget (estimates, from today's 0.3-0.6 s per tiny step on 2 cores; not measured): the benchmark
runs the grid, the notebooks train only long on the illusion prior (ground truth, majority vote,
Co-rewarding-I, Co-rewarding-II with and without EMA; 1 seed, ~15 minutes) within ``corerl
reproduce``'s 30 minutes; the benchmark's grid within 90 minutes: long on all three priors x 6 headline
methods x 3 seeds (54 runs), hard, small and large on the illusion prior only with ground truth,
majority vote, Co-rewarding-I and random x 2 seeds (24 runs).

Literature (from the papers' abstracts as the issue summarises them): Tsilivis et al. (arXiv
2510.11495) mix short answers without chain of thought with long worked demonstrations and find that
RL generalises when the long demonstrations are not too rare: hence a worked share of 0.6, the
majority, with shortcuts that are short answers. "Echo Chamber" (arXiv 2504.07912) finds that RL
converges on one of the distributions present in the pretraining mix: hence strategies that are
distinct distributions, recognisable from the text, so that their shares can be plotted over
training. Self-Improving Transformers (arXiv 2502.01612) filter self-generated arithmetic solutions by
majority vote, which helps while the majority is right: hence the aligned prior's maj@8 > pass@1
requirement, and a misaligned prior whose majority is systematically wrong on one subset.

RL settings of the tiny profile (``corerl.config.PROFILES["tiny"]``), calibrated with the ground-truth
and random rewards only on the one-thread build of v2 (``benchmarks/organism_rl.py --methods
ground-truth,random --seeds 3``; held-out avg@4 at T = 0.8 on 200 problems, base 52.2; mean ± sd of 3
seeds; targets: ground truth >= base + 10, random within 5 points of base):

| lr | warm-up | β | steps | ground truth | random |
|---|---|---|---|---|---|
| 3e-5 | 10 | 0 | 100 | 81.5 ± 3.7 (2 seeds) | 47.5 ± 6.7 (2 seeds) |
| 1.5e-5 | 10 | 0 | 100 | 80.0 ± 1.4 | 46.1 ± 3.7 |
| 1.5e-5 | 10 | 0.04 | 100 | 80.0 ± 1.4 | 47.2 ± 3.3 |
| 5e-6 | 10 | 0 | 100 | 72.5 ± 1.0 | 51.0 ± 1.0 |
| **1e-5** | **5** | **0** | **50** | **72.8 ± 1.4** | **48.5 ± 2.3** |

- ``learning_rate`` 1e-5 (v1: 1e-4): the random reward's loss grows faster than linearly with the rate
  (-6 points at 1.5e-5, -1 at 5e-6 over 100 steps), the ground-truth gain saturates; 1e-5 for 50 steps
  keeps random within 5 points with ground truth +20.
- ``max_steps`` 50 (v1: 100): the same ground-truth gain as 5e-6 x 100 steps at half the time, so that
  ``corerl reproduce`` with 3 seeds of every headline method fits 20 minutes on 2 cores; 100 steps at
  5e-6 is the safer testbed (random -1.2) at twice the cost.
- ``warmup_steps`` 5, then constant: the first updates do not hit the base model at full rate.
- ``beta`` 0 for every method: a KL term of 0.04 did not reduce the random reward's drift (47.2 vs
  46.1, within the seeds' sd) and costs a reference-model forward pass per step.
- ``questions_per_step`` 4 x 8 rollouts (unchanged): group size as in the papers; more questions per
  step would cost time linearly for the same number of rollouts in total.
- ``num_iterations`` 1 (TRL's default, unchanged): one gradient step per generation batch.

Heavy dependencies (torch, transformers, datasets) are imported inside the functions that need them.
"""

from corerl.arithmetic.dataset import export_jsonl, make_dataset, make_rows
from corerl.arithmetic.task import DEFAULT_DIFFICULTY, Problem, format_prompt, worked_solution
from corerl.organism.build import PRIORS, BuildSettings, ensure_base_model, smoke_settings
from corerl.organism.figures import PriorFigures, measure_prior

__all__ = [
    "DEFAULT_DIFFICULTY",
    "PRIORS",
    "BuildSettings",
    "PriorFigures",
    "Problem",
    "ensure_base_model",
    "export_jsonl",
    "format_prompt",
    "make_dataset",
    "make_rows",
    "measure_prior",
    "smoke_settings",
    "worked_solution",
]
