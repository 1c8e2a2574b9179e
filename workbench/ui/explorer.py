"""The exit explorer's widgets: move an exit threshold and see, from the stored outputs alone, what it does.

:func:`show_explorer` builds the ipywidgets UI over a run folder (:class:`ExplorerUI`): every change of
method, exit rule or threshold recomputes from the stored outputs, no model runs. What it shows comes from
`workbench.ui.state` (operating points and curves, no widgets) and `workbench.study.figures`
(:func:`explorer_figure`); :func:`static_explorer_figure` draws the same figure for reading without a kernel.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench.methods.points import OperatingPoint
from workbench.study.figures import explorer_figure, figure_png
from workbench.methods.signals import PER_STAGE
from workbench.names import CASCADE_POLICIES
from workbench.ui.state import ExplorerData, load_explorer_data


def static_explorer_figure(run: str | Path | ExplorerData, *, method: str | Sequence[str] = "deebert",
                           policy: str | None = None, param=None, target: float = 3.0, split: str = "test",
                           seed: int | None = None):
    """:func:`explorer_figure` of a run folder at one parameter value, for reading without a kernel.

    `policy` defaults to the method's own rule; `param` to the value the study chooses on the tune split for
    `target` speed-up (:func:`operating_param`). The figure is made with pyplot, so a notebook shows it
    (end the cell with `;` to show it once); returns the Figure."""
    import matplotlib.pyplot as plt

    data = run if isinstance(run, ExplorerData) else load_explorer_data(run, split=split, seed=seed)
    policy = policy or data.method(method).rules[0]
    param = data.operating_param(method, policy, target) if param is None else param
    fig = plt.figure(figsize=(15, 4.2), layout="constrained")
    return explorer_figure(data.state(method, policy, param), data.curve(method, policy), fig=fig,
                           num_labels=len(data.label_names))


# ----------------------------------------------------------------------------- the widget UI


def _label(policy: str, value: float) -> str:
    return f"{value:.0f}" if policy == "patience" else f"{value:.6g}"


FREE = "free"  # the target control's value for thresholds set by hand


class ExplorerUI:
    """The interactive explorer over one run folder. `state` is the current :class:`OperatingPoint`; `widget` is
    what to display. Controls:

    - method, exit rule, seed, and a target (the run's targets, or 'free'): a target sets every threshold as
      the main table does (on tune; a cascade gets one threshold per non-final member);
    - one slider per threshold (`param`, and `params` for every non-final cascade member): moving one sets
      the target to 'free';
    - the example table, paged (`page`), with label names, or only the wrong early exits;
    - a comparison of several methods at the target with paired intervals against a baseline;
    - one example drilled down (`example_id`, or a `search` over the texts): the probability of each class at
      every exit of every model, and where each compared method stops, right or wrong.
    """

    def __init__(self, data: ExplorerData, *, method: str | None = None, policy: str | None = None,
                 target: float = 3.0, rows: int = 15):
        import ipywidgets as widgets

        self.data, self.rows = data, rows
        method = method or data.methods[0]
        targets = [float(t) for t in data.config.get("run", {}).get("targets", (2.0, 3.0, 4.0))]
        targets = sorted(set(targets) | {float(target)})
        self.method = widgets.Dropdown(options=list(data.methods), value=method, description="method")
        self.policy = widgets.Dropdown(options=list(data.method(method).rules), description="exit rule")
        self.target = widgets.Dropdown(options=[(f"{t:g}x", t) for t in targets] + [(FREE, FREE)],
                                       value=float(target), description="target")
        self.seed = widgets.Dropdown(options=list(data.seeds), value=data.seed, description="seed")
        self.params = [widgets.SelectionSlider(options=[("0", 0.0)], description="threshold",
                                               continuous_update=False, layout=widgets.Layout(width="520px"))
                       for _ in range(max(len(data.method(m).members) for m in data.methods) - 1 or 1)]
        self.param = self.params[0]
        self.only_wrong = widgets.Checkbox(value=False, description="only wrong early exits")
        self.page = widgets.BoundedIntText(value=1, min=1, max=1, description="page", layout=widgets.Layout(
            width="160px"))
        self.summary, self.figure, self.table = widgets.HTML(), widgets.Image(format="png"), widgets.HTML()
        self.compared = widgets.SelectMultiple(options=list(data.methods), value=tuple(data.methods[:2]),
                                               description="compare", rows=min(6, len(data.methods)))
        self.baseline = widgets.Dropdown(options=list(data.methods), value=data.methods[0], description="baseline")
        self.comparison = widgets.HTML()
        self.search = widgets.Text(description="search", placeholder="a word of the text")
        self.example_id = widgets.Combobox(description="example id", placeholder="pick or type an id",
                                           ensure_option=False)
        self.drill = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([self.method, self.policy, self.target, self.seed]),
            widgets.VBox(self.params), self.summary, self.figure,
            widgets.HBox([self.only_wrong, self.page]), self.table,
            widgets.HTML("<b>Methods side by side at the target</b>"),
            widgets.HBox([self.compared, self.baseline]), self.comparison,
            widgets.HTML("<b>One example, exit by exit</b>"), widgets.HBox([self.search, self.example_id]),
            self.drill])
        for name in ("method", "policy", "target", "seed", "summary", "figure", "table", "comparison", "search",
                     "example_id", "drill"):  # stable hooks for styling and for driving the page from a browser
            getattr(self, name).add_class(f"wb-{name.replace('_', '-')}")
        self.widget.add_class("wb-explorer")
        self.state: OperatingPoint | None = None
        self._quiet = True
        self._set_rules(policy)
        self._quiet = False
        self._refresh()
        self.method.observe(self._on_method, names="value")
        self.policy.observe(self._on_policy, names="value")
        self.target.observe(self._on_target, names="value")
        self.seed.observe(self._on_seed, names="value")
        for slider in self.params:
            slider.observe(self._on_param, names="value")
        self.only_wrong.observe(lambda _: self._show_table(reset=True), names="value")
        self.page.observe(lambda _: self._show_table(), names="value")
        self.compared.observe(lambda _: self._show_comparison(), names="value")
        self.baseline.observe(lambda _: self._show_comparison(), names="value")
        self.search.observe(lambda _: self._on_search(), names="value")
        self.example_id.observe(lambda _: self._show_example(), names="value")
        self._show_comparison()

    def __repr__(self) -> str:
        return f"ExplorerUI({self.state.summary() if self.state else 'empty'})"

    # choices -------------------------------------------------------------------------------------
    @property
    def _thresholds(self) -> int:
        """How many sliders the current method and rule use: one per non-final member of a cascade on its
        own rule, else one."""
        m = self.data.method(self.method.value)
        return len(m.members) - 1 if m.is_cascade and self.policy.value in CASCADE_POLICIES else 1

    def _set_rules(self, policy: str | None = None) -> None:
        rules = list(self.data.method(self.method.value).rules)
        self.policy.options = rules
        self.policy.value = policy if policy in rules else rules[0]
        self._set_grid()

    @property
    def _shown_target(self) -> float:
        """The target the comparison and the drill-down use: the chosen one, or 3x while the target is free."""
        return 3.0 if self.target.value == FREE else self.target.value

    def _set_grid(self) -> None:
        method, policy = self.method.value, self.policy.value
        grid = self.data.grid(method, policy)
        chosen = ((None,) * self._thresholds if self.target.value == FREE else  # the target's thresholds, on tune
                  tuple(float(v) for v in np.atleast_1d(self.data.operating_param(method, policy, self.target.value))))
        for i, slider in enumerate(self.params):
            slider.layout.display = None if i < self._thresholds else "none"
            if i >= self._thresholds:
                continue
            value = chosen[i] if chosen[i] is not None else float(np.median(grid))
            options = list({_label(policy, v): float(v) for v in np.unique(np.append(grid, value))[::-1]}.items())
            slider.options = options[::-1]  # labels unique, smallest first
            slider.description = "patience" if policy == "patience" else (
                f"{self.data.method(method).members[i]}" if self._thresholds > 1 else "threshold")
            slider.value = min((v for _, v in slider.options), key=lambda v: abs(v - value))

    # events --------------------------------------------------------------------------------------
    def _quietly(self, change) -> None:
        self._quiet = True
        try:
            change()
        finally:
            self._quiet = False
        self._refresh()

    def _on_method(self, _) -> None:
        self._quietly(self._set_rules)

    def _on_policy(self, _) -> None:
        if not self._quiet:
            self._quietly(self._set_grid)

    def _on_target(self, _) -> None:
        if not self._quiet and self.target.value != FREE:
            self._quietly(self._set_grid)
            self._show_comparison()

    def _on_seed(self, _) -> None:
        if self._quiet:
            return
        self.data = self.data.with_seed(self.seed.value)
        self._quietly(self._set_grid)
        self._show_comparison()

    def _on_param(self, _) -> None:
        if self._quiet:
            return
        if self.target.value != FREE:  # a hand-set threshold leaves the target
            self._quiet = True
            self.target.value = FREE
            self._quiet = False
        self._refresh()

    # views ---------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        method, policy = self.method.value, self.policy.value
        values = tuple(s.value for s in self.params[:self._thresholds])
        at_target = (self.data.target_state(method, policy, self.target.value)
                     if policy in PER_STAGE and self.target.value != FREE else None)
        # a per-stage rule (ztw) at a target: its thresholds per exit; by hand, the slider's for every exit
        self.state = at_target or self.data.state(method, policy, values if len(values) > 1 else values[0])
        note = ""
        if self.target.value != FREE and self.data.target_state(method, policy, self.target.value) is None:
            note = f" (the {self.target.value:g}x target is out of reach on tune: the closest setting is shown)"
        self.summary.value = f"<b>{html.escape(self.state.summary())}</b>{note}"
        self.figure.value = figure_png(explorer_figure(self.state, self.data.curve(method, policy),
                                                       num_labels=len(self.data.label_names)))
        self._show_table(reset=True)
        self._show_example()

    def _named(self, frame):
        names = self.data.label_names
        out = frame.copy()
        for column in ("label", "pred"):
            if column in out:
                out[column] = [names[int(v)] for v in out[column]]
        return out

    def _show_table(self, reset: bool = False) -> None:
        if self.state is None:
            return
        rows = self.state.wrong_early_exits if self.only_wrong.value else self.state.examples
        pages = max(1, -(-len(rows) // self.rows))
        self.page.max = pages
        if reset:
            self.page.value = 1
        page = min(self.page.value, pages)
        first = (page - 1) * self.rows
        shown = self._named(rows.iloc[first:first + self.rows]).assign(text=lambda t: t["text"].str.slice(0, 200))
        caption = (f"{len(rows)} wrong early exits, most confident first" if self.only_wrong.value
                   else f"{len(rows)} examples") + f"; rows {first + 1}-{first + len(shown)}, page {page} of {pages}"
        self.table.value = _html_table(shown, caption)
        self.example_id.options = tuple(str(i) for i in rows["example_id"].head(200))

    def _show_comparison(self) -> None:
        target = self._shown_target
        methods = list(self.compared.value) or [self.method.value]
        table = self.data.compare(methods, target, baseline=self.baseline.value)
        self.comparison.value = _html_table(table, f"at {target:g}x, parameters chosen on tune as in the main "
                                                   f"table; interval: paired bootstrap 95% against "
                                                   f"{self.baseline.value}")

    def _on_search(self) -> None:
        found = self.data.search(self.search.value) if self.search.value.strip() else None
        if found is not None:
            self.example_id.options = tuple(found["example_id"])
            self.drill.value = _html_table(found.assign(text=found["text"].str.slice(0, 200)),
                                           f"{len(found)} examples contain {self.search.value!r}; pick an id")

    def _show_example(self) -> None:
        chosen = self.example_id.value.strip()
        if not chosen:
            return
        target = self._shown_target
        methods = list(dict.fromkeys([self.method.value, *self.compared.value]))
        try:
            one = self.data.example(chosen, methods=methods, target=target)
        except ValueError as err:
            self.drill.value = f"<p>{html.escape(str(err))}</p>"
            return
        head = (f"<p><b>{html.escape(one['example_id'])}</b>: {html.escape(str(one['text']))}<br>"
                f"gold label: <b>{html.escape(one['label'])}</b></p>")
        self.drill.value = (head + _html_table(one["stops"], f"where each method stops at {target:g}x")
                            + _html_table(one["panel"], "every exit of every model"))


def _html_table(frame, caption: str) -> str:
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", escape=True, border=0, na_rep="\u2014",
                         classes="wb-frame")
    return f"<div style='font-size:small'>{_FRAME_STYLE}<p>{html.escape(caption)}</p>{body}</div>"


# every header over its column, whatever the notebook front end's own table style
_FRAME_STYLE = ("<style>.wb-frame th, .wb-frame td { text-align: left !important; vertical-align: top; "
                "padding: 2px 8px; }</style>")


def build_explorer(run: str | Path | ExplorerData, *, method: str | None = None, policy: str | None = None,
                   target: float = 3.0, rows: int = 15, split: str = "test", seed: int | None = None) -> ExplorerUI:
    """The explorer UI over a run folder, without displaying it (the slider starts at the parameter the
    study chooses on tune for `target` speed-up)."""
    data = run if isinstance(run, ExplorerData) else load_explorer_data(run, split=split, seed=seed)
    return ExplorerUI(data, method=method, policy=policy, target=target, rows=rows)


def show_explorer(run: str | Path | ExplorerData, **options) -> ExplorerUI:
    """Build the explorer UI (see :func:`build_explorer` for `options`), display it and return it; assign the
    result (`explorer = show_explorer(run.explorer())`) to read `explorer.state` later."""
    from IPython.display import display

    ui = build_explorer(run, **options)
    display(ui.widget)
    return ui
