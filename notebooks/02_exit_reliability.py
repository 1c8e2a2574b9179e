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
# # Are exit decisions reliable?
#
# The paper's second reason why early exit fails at high speed-ups: even where an exit's answer would be
# right, the *decision* to stop there rests on the exit's confidence, and that confidence must rank
# inputs by difficulty, easy ones (that the exit gets right) above hard ones (that it gets wrong).
#
# The **Difficulty Inversion Score** (DIS) measures exactly that ranking: over all pairs of one correct
# and one wrong input, the share where the correct one has the higher confidence, ties counting half.
# 50 is chance; it equals 100 x AUROC of the confidence for predicting correctness. On MNLI the paper
# finds DIS 56.7 for DeeBERT's layer-2 off-ramp, close to chance, against 73.5 for a complete 2-layer
# model and 77.4 for a pre-trained 2-layer model.
#
# Three questions here: which exits rank inputs well (DIS per model and layer); does the measure depend
# on ties (confidence against logit margin); and how far are the exit decisions from the best and the
# worst possible ones (oracle exit against random exit)?

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

SEED, METRIC = run.seed, run.metric
data = run.explorer(seed=SEED)

# %% [markdown]
# ## DIS of every exit
#
# Rows are models, columns exit layers (test split, mean over seeds). Complete models have one exit, at
# their depth; `deebert`, `pabee` and `probe` have one per layer. Compare DeeBERT's off-ramps with the
# complete models at the same depth: the paper's claim is that the complete models rank inputs by
# difficulty clearly better. A DIS near 50 means the exit's confidence carries almost no information
# about whether its answer is right, so any threshold on it exits hard and easy inputs alike.

# %%
plots.dis_heatmap(run.tables["dis"]);

# %% [markdown]
# ## Ties: probabilities against logit margins
#
# Softmax probabilities saturate: in floating point many confident inputs have a max probability of
# exactly 1.0, and a tie counts as half a correctly ordered pair. The same ranking on the logit margin
# (top logit minus the runner-up) rarely ties. `ties` and `ties_logit` count tied (correct, wrong) pairs
# out of `pairs`. For two classes the margin is a monotone function of the max probability, so
# `dis` and `dis_logit` can differ only through ties; where they differ, the probability scale has
# hidden part of the ranking.

# %%
run.tables["dis"][["model", "layer", "dis", "dis_logit", "ties", "ties_logit", "pairs", "accuracy"]].round(1)

# %%
plots.dis_heatmap(run.tables["dis"], value="dis_logit").set_title("DIS on the logit margin");

# %% [markdown]
# ## Oracle exit against random exit
#
# Two reference points for DeeBERT's exit decisions (test split, seed `SEED`):
#
# - **oracle exit**: every input leaves at its first exit that answers it correctly (the last exit if none
#   does): what a perfect exit signal could reach with these off-ramps, at its own speed-up;
# - **random exit**: inputs leave at random layers with the same mean layers executed, without looking at
#   the input.
#
# DeeBERT's entropy curve lies between them. Close to the random line means the exit decisions are
# barely better than chance; the distance to the oracle star is what a better exit signal could gain
# with the very same off-ramps.

# %%
references = run.tables["exit_references"].query("seed == @SEED")[["method", "speedup_layers", "metric"]]
plots.speed_accuracy(data.curve("deebert", "entropy"), references=references, metric_name=METRIC);

# %%
references.query("method == 'oracle exit'").round(2)

# %% [markdown]
# ## The answer on this run

# %%
print(wb.answers.exit_reliability(run))
