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
# # The exit explorer: what does one threshold do?
#
# The tables of the other notebooks fix each method at a few target speed-ups. The explorer lets you move
# the threshold yourself and see, for one method on the test split:
#
# - where the operating point sits on the method's speed-accuracy curve;
# - where inputs exit (the share answered at each layer, or by each cascade member);
# - how calibrated the answers are (reliability diagram and ECE of the confidence that answered);
# - the inputs themselves, with their text, exit layer and confidence; ticking *only wrong early exits*
#   lists the inputs that left early with a wrong answer, most confident first, the mistakes a
#   confidence threshold cannot catch.
#
# Everything is recomputed from the stored outputs, so it answers at once and never runs a model. Methods
# are the run's early-exit models (DeeBERT with entropy or max-prob exits, PABEE with patience or
# max-prob, and any regularized variant) and its cascades, plain and with the difficulty-aware small
# member (`cascade+DA`). The slider walks over a grid of the rule's parameter and starts at the value
# the study chooses on the tune split for 3x.

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
from workbench.ui.explorer import show_explorer, static_explorer_figure

data = run.explorer()
data.methods

# %% [markdown]
# ## One operating point, without a kernel
#
# The same three views for DeeBERT at the entropy threshold the study picks for 3x, so this notebook
# reads the same when it is only rendered. Then the inputs it lets out early and gets wrong.

# %%
static_explorer_figure(data, method="deebert", target=3.0);

# %%
deebert = data.state("deebert", "entropy", data.operating_param("deebert", "entropy", 3.0))
print(deebert.summary())
deebert.wrong_early_exits.head(10)

# %% [markdown]
# And the first cascade with the difficulty-aware small member at the same target. Compare how many
# inputs exit early, how many of those are wrong, and how confident the wrong ones are.

# %%
cascade = run.cascade_labels(regularized=True)[0]
static_explorer_figure(data, method=cascade, target=3.0);

# %%
regularized = data.state(cascade, "maxprob", data.operating_param(cascade, "maxprob", 3.0))
print(regularized.summary())
regularized.wrong_early_exits.head(10)

# %% [markdown]
# ## Every method at the same target
#
# Each method's parameters chosen on tune for 3x, as the main table does; how accurate it is on the test
# split and how many of its early exits were wrong.

# %%
print(wb.answers.explorer(data, target=3.0))

# %% [markdown]
# ## The explorer
#
# Pick a method, an exit rule, a seed and a target: the target sets every threshold as the main table does
# (on tune; a cascade of three members gets one slider per member). Move a slider to explore by hand (the
# target then reads *free*), page through the examples or tick *only wrong early exits*. Below, compare
# several methods at the target with paired intervals against a baseline, and drill down to one example
# (pick its id, or search the texts): the probability of each class at every exit of every model, and
# where each method stops. `explorer.state` holds the current operating point (its `examples` table has
# every test input); `data.compare(...)`, `data.example(...)` and `data.search(...)` give the same tables
# in Python.

# %%
explorer = show_explorer(data)
