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
# # Calibration: can a confidence threshold be trusted?
#
# Both early exit and cascades stop on a confidence threshold, so both rely on confidence meaning what it
# says: among inputs answered with confidence p, a share p should be right. CascadeBERT adds a
# **difficulty-aware regularizer** to the small member: within a batch it pushes the confidence of each
# easy training input (one the small model got right in every one of k runs) above that of a random hard
# one by a margin eps, so that the confidence ranks inputs by difficulty.
#
# Three questions: how calibrated is each exit, before and after temperature scaling; what does the
# regularizer do to the small member's reliability diagram compared with the plain complete model and
# with DeeBERT's off-ramp at the same depth; and how calibrated are the answers each method gives at its
# operating points?
#
# ECE here is top-label ECE with 10 equal-width bins on the 0-100 scale, the protocol of Desai &
# Durrett (2020); temperature T is fitted on the tune split by NLL and applied to the test split.

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
from workbench.study import figures as plots

K = int(run.tables["complete_models"]["layers"].min())  # depth of the smallest cascade member
SMALL = [wb.names.complete_name(K), wb.names.complete_name(K, regularized=True), "deebert"]  # three exits at K
run.config["run"]["difficulty"], K

# %% [markdown]
# ## ECE of every exit, before and after temperature scaling
#
# One row per model and exit layer (test split, mean over seeds). `mean_confidence` against `accuracy`
# shows the direction of the miscalibration (confidence above accuracy: over-confident); `temperature`
# above 1 softens over-confident logits. Temperature scaling never changes the argmax, so a method whose
# ECE drops a lot after scaling was mostly mis-scaled; one whose ECE stays high has confidences that
# are wrong in rank, not only in scale, and no single temperature fixes a threshold on them.

# %%
columns = ["model", "layer", "n", "accuracy", "mean_confidence", "ece", "temperature", "ece_temperature"]
run.tables["calibration"][columns].round(2)

# %% [markdown]
# ## Reliability diagrams at the smallest depth
#
# Test split, seeds pooled. Left, the small complete model as trained for the task alone; middle, the same
# depth trained with the difficulty-aware regularizer (`complete-<K>L-da`); right, DeeBERT's off-ramp at
# the same layer. Bars are the accuracy per confidence bin; the hatched band is the gap to the mean
# confidence in the bin. What matters for a cascade is the right part of each diagram: the inputs
# confident enough to be let out.

# %%
plots.reliability_grid(run.tables["reliability"], models=SMALL);

# %% [markdown]
# Calibration in the ECE sense is not the regularizer's target: it asks for a *ranking* (easy above
# hard). Its effect on the ranking shows in the DIS of the same exits (see `02_exit_reliability`):

# %%
run.tables["dis"].query("layer == @K and model in @SMALL")[["model", "layer", "dis", "dis_logit", "accuracy"]].round(1)

# %% [markdown]
# ## Calibration of the answers at each operating point
#
# The ECE of the answers each method actually gives at each target speed-up (thresholds chosen on tune;
# mean over seeds): for early exit, the confidence of the exit that answered; for a cascade, that of the
# member that answered. These are the confidences a user of the accelerated model would see.

# %%
run.tables["main"].dropna(subset=["ece"]).pivot_table(index="method", columns="target_speedup", values="ece").round(2)

# %% [markdown]
# ## The answer on this run

# %%
print(wb.answers.calibration(run))
