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
# # Are shallow representations enough?
#
# The paper's first reason why early exit fails at high speed-ups: the layers an early exit stops at were
# never trained to be the last ones. DeeBERT fine-tunes the whole backbone for its *final* classifier and
# then bolts an off-ramp onto each frozen layer. On the MNLI instances DeeBERT lets out at layer 2, its
# off-ramp is about 43% accurate, while a **complete** 2-layer model (the same two layers, fine-tuned to
# be the whole model) is about 80% accurate on exactly those instances. So the question is not whether
# two layers *can* solve these inputs, but whether an off-ramp on layers tuned for something else does.
#
# This notebook asks it on one run: for the inputs DeeBERT exits at layer k (its threshold chosen on the
# tune split for the study's `sufficiency_target` speed-up), how accurate is its off-ramp, a complete
# k-layer model, and a probe (a head on the frozen *pre-trained* layer k, never fine-tuned)?

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

run.config["run"]["sufficiency_target"], run.config["run"]["backbone"], run.full_layers

# %% [markdown]
# ## Same inputs, three classifiers
#
# One row per exit layer k that has a complete k-layer model and at least 20 exiting test inputs (seeds
# pooled). `acc_internal` is DeeBERT's off-ramp, `acc_complete` the complete k-layer model, `acc_probe`
# the probe, all on the inputs DeeBERT exits at k. `diff` is complete minus off-ramp in points, with a
# paired bootstrap 95% interval (`ci_low`, `ci_high`); the verdict says whether the complete model is
# `better`, `worse` or `indistinguishable`. `params` is the entropy threshold used. The paper's finding
# would show as a positive `diff` whose interval excludes 0 at the shallow layers.

# %%
run.tables["sufficiency"].round(2)

# %%
plots.sufficiency_bars(run.tables["sufficiency"]);

# %% [markdown]
# ## Every layer, every input: probes, off-ramps and PABEE's exits
#
# The table above looks only at the inputs DeeBERT chose to let out. Over the whole test split, how
# accurate is the classifier at each layer of
#
# - `probe`: frozen pre-trained backbone, a head per layer (what the layers know before any fine-tuning);
# - `deebert`: the backbone fine-tuned for the last layer, off-ramps trained afterwards on frozen states;
# - `pabee`: backbone and every layer's classifier trained jointly (loss weighted toward deeper layers);
# - `complete-kL`: a complete model of depth k, a single point at layer k?
#
# If shallow representations of a fine-tuned backbone were enough, the `deebert` curve would sit near the
# complete models at the same depth. A gap between them at shallow layers is the cost of exiting from
# layers that were tuned for a deeper head. Numbers are means over seeds.

# %%
per_layer = wb.tables.per_layer_accuracy(run.tables["dis"], ["probe", "deebert", "pabee", "complete"])
per_layer.pivot(index="layer", columns="model", values="accuracy").round(1)

# %%
plots.exit_accuracy(per_layer);

# %% [markdown]
# Things to check before reading too much into these numbers: `n` in the sufficiency table (few inputs
# give wide intervals), how many seeds were pooled (`seeds`), and whether the complete model is better
# everywhere (then the exited inputs are not special) or specifically on the inputs DeeBERT exits early.

# %% [markdown]
# ## The answer on this run

# %%
print(wb.answers.shallow_representations(run))
