# ---
# jupyter:
#   execution:
#     timeout: 7200
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: execution
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tour: early exit and cascades of complete models on one task
#
# A BERT classifier runs all of its L layers on every input, easy or hard. Two ways to spend fewer layers
# on the easy ones:
#
# - **Dynamic early exit** (DeeBERT, PABEE) keeps one backbone and attaches a small classifier, an *exit*,
#   after every layer. An input stops at the first exit whose signal says "confident enough": for DeeBERT,
#   the entropy of that exit's softmax falls below a threshold S; for PABEE, the same answer comes out of
#   `patience` consecutive exits.
# - **A cascade of complete models** (CascadeBERT) trains complete models of growing depth, each with all
#   of its layers fine-tuned for the task. An input goes to the smallest one first and moves on to the next
#   only while the current member's top-class probability is not above a threshold. An input that
#   escalates pays for every member it passed through (1 layer, then 6, costs 7).
#
# Cost is counted as in the paper: **speed-up = L / mean layers executed per input**. The paper's claim
# is that early exit breaks down at 3-4x speed-ups while a calibrated cascade of complete models holds
# up (average GLUE score 78.3 against DeeBERT's 67.8 at about 4x).
#
# This notebook runs the main job on the default task (Rotten Tomatoes critics' snippets, fresh vs
# rotten) and reads one table of each kind. The other notebooks take one question each:
# `01_shallow_representations` (are shallow layers enough?), `02_exit_reliability` (do exit signals rank
# inputs by difficulty?), `03_calibration`, `04_cascadebert` (the main table) and `05_explorer`.
#
# The notebooks read the run folder that `make reproduce` writes (`runs/<TASK>-<PRESET>`). Without one,
# the next cell says which command makes it and how long that takes, and starts nothing: pass
# `train=True` to `wb.open_run` to train here instead. With `PRESET = "smoke"` the run is made at once
# (about a minute on a CPU), but the backbone is a tiny random BERT: its numbers test the plumbing and say
# nothing about the paper. Use `quick` (the default) or `full` for numbers worth reading.

# %% tags=["parameters"]
import os

PRESET = os.environ.get("WORKBENCH_PRESET", "quick")  # smoke (1 min) | lesson (5 min) | quick | paper | full
TASK = os.environ.get("WORKBENCH_TASK", "rt")  # rt, vitaminc, or a GLUE task name with GLUE_DIR
GLUE_DIR = os.environ.get("WORKBENCH_GLUE_DIR")  # GLUE layout folder (<TASK>/train.tsv, dev.tsv), GLUE tasks
RUN_DIR = None     # None: runs/<TASK>-<PRESET> under the repository, the folder `make reproduce` writes

# %%
import workbench as wb

run = wb.open_run(TASK, PRESET, glue_dir=GLUE_DIR, run_dir=RUN_DIR)

# %%
import pandas as pd

L, SEED, METRIC = run.full_layers, run.seed, run.metric
run.config["task"]["sizes"], run.config["run"]["backbone"], L

# %% [markdown]
# Everything below is computed from one file, `outputs.parquet` (`run.outputs`): every tune and test example's
# prediction at every exit of every model, one row each. Exit rules, cascades, oracles and calibration
# are pure functions of that table, so nothing here runs a model again.

# %%
run.outputs.groupby(["model", "split"]).size().unstack()

# %% [markdown]
# ## Complete models: what does each depth cost in accuracy?
#
# The static baseline. A complete k-layer model keeps the first k layers of the backbone and fine-tunes
# them all with a fresh head; its speed-up is exactly L / k for every input. The paper's BERT-6L, 4L and
# 3L rows are such models. How far does each fall below the full model (the row with speed-up 1)?

# %%
run.tables["complete_models"].round(2)

# %% [markdown]
# ## Early exit: one DeeBERT sweep
#
# DeeBERT first fine-tunes the full model, then freezes it and trains one off-ramp per layer. Each row
# below is one entropy threshold S applied to the test split: the metric of the answers, the mean layers
# run, the speed-up, and the share of inputs leaving at each exit. S = 0 never exits early (the full
# model); S = ln(2) lets almost everything out at the first exit. Read down the table to see where the
# inputs go as the threshold rises, and what that does to the metric.

# %%
sweep = run.tables["early_exit"].query("method == 'deebert' and policy == 'entropy' and seed == @SEED")
sweep.filter(regex="^(param|metric|mean_layers|speedup_layers|share_exit_.*)$").iloc[::4].round(3)

# %% [markdown]
# ## A cascade: one routing
#
# The smallest complete model answers when its max softmax probability is above the threshold tau,
# otherwise the full model does. As in the paper, tau is chosen on the **tune** split to reach a target
# speed-up (here 3x) and then applied to the **test** split, where the realised speed-up is reported.
# `escalated` is the share of inputs that went on to the full model and paid for both.

# %%
from workbench.methods.cascade import CascadeOutputs, evaluate_routing, route, thresholds_for_speedup

members = wb.names.member_names((1, L))  # complete-1L, then the complete L-layer model
tau = thresholds_for_speedup(CascadeOutputs.from_outputs(run.outputs, members=members, split="tune", seed=SEED),
                             3.0, full_layers=L, metric=METRIC)
test = CascadeOutputs.from_outputs(run.outputs, members=members, split="test", seed=SEED)
routed = evaluate_routing(test, route(test, tau), metric=METRIC, full_layers=L)
print("tau chosen on tune:", tau)
pd.Series(routed).to_frame("test split")

# %% [markdown]
# ## Speed against accuracy
#
# One curve per method over its whole parameter range (test split, seed `SEED`): DeeBERT's entropy
# threshold, PABEE's patience, the cascade's threshold, and the complete models as single points. The
# paper's claim, in this picture: toward the right (3-4x), the early-exit curves fall faster than the
# cascade's. Whether this run shows it is read off the curves, not assumed.

# %%
from workbench.study import figures as plots

data = run.explorer(seed=SEED)
cascade = run.cascade_labels()[0]
curves = data.curves([("deebert", "entropy"), ("pabee", "patience"), (cascade, "maxprob")])
plots.speed_accuracy(pd.concat([curves, run.tables["complete_models"].assign(method=wb.names.COMPLETE_CURVE)]),
                     metric_name=METRIC);

# %% [markdown]
# ## The answer on this run
#
# Computed from the main table (`04_cascadebert` has all of it): the most accurate method at the highest
# target, and the first cascade against DeeBERT at every target.

# %%
print(wb.answers.best_at_highest_target(run))
print(wb.answers.cascade_vs_deebert(run))
