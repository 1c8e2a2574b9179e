"""The exit explorer's widgets: move an exit threshold and see, from the stored outputs alone, what it does.

:func:`show_explorer` builds the ipywidgets UI over a run folder (:class:`ExplorerUI`): every change of
method, exit rule or threshold recomputes from the stored outputs, no model runs. What it shows comes from
`workbench.ui.state` (operating points and curves, no widgets) and `workbench.study.figures`
(:func:`explorer_figure`); :func:`static_explorer_figure` draws the same figure for reading without a kernel.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench.methods.points import OperatingPoint
from workbench.study.figures import explorer_figure, figure_png
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
    return explorer_figure(data.state(method, policy, param), data.curve(method, policy), fig=fig)


# ----------------------------------------------------------------------------- the widget UI


def _label(policy: str, value: float) -> str:
    return f"{value:.0f}" if policy == "patience" else f"{value:.6g}"


class ExplorerUI:
    """The interactive explorer over one run folder: dropdowns for method and exit rule, a slider over the
    rule's parameter grid, a checkbox for only the wrong early exits; the summary line, the figure of
    :func:`explorer_figure` and the example table update on every change. `state` is the current
    :class:`OperatingPoint`; `widget` is what to display."""

    def __init__(self, data: ExplorerData, *, method: str | None = None, policy: str | None = None,
                 target: float = 3.0, rows: int = 15):
        import ipywidgets as widgets

        self.data, self.target, self.rows = data, target, rows
        method = method or data.methods[0]
        self.method = widgets.Dropdown(options=list(data.methods), value=method, description="method")
        self.policy = widgets.Dropdown(options=list(data.method(method).rules), description="exit rule")
        self.param = widgets.SelectionSlider(options=[("0", 0.0)], description="threshold", continuous_update=False,
                                             layout=widgets.Layout(width="520px"))
        self.only_wrong = widgets.Checkbox(value=False, description="only wrong early exits")
        self.summary = widgets.HTML()
        self.figure = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.method, self.policy]),
                                    widgets.HBox([self.param, self.only_wrong]),
                                    self.summary, self.figure, self.table])
        self.state: OperatingPoint | None = None
        self._quiet = True
        self._set_rules(policy)
        self._quiet = False
        self._refresh()
        self.method.observe(self._on_method, names="value")
        self.policy.observe(self._on_policy, names="value")
        self.param.observe(self._on_param, names="value")
        self.only_wrong.observe(lambda _: self._show_table(), names="value")

    def __repr__(self) -> str:
        return f"ExplorerUI({self.state.summary() if self.state else 'empty'})"

    # choices -------------------------------------------------------------------------------------
    def _set_rules(self, policy: str | None = None) -> None:
        rules = list(self.data.method(self.method.value).rules)
        self.policy.options = rules
        self.policy.value = policy if policy in rules else rules[0]
        self._set_grid()

    def _set_grid(self) -> None:
        method, policy = self.method.value, self.policy.value
        chosen = np.atleast_1d(self.data.operating_param(method, policy, self.target))[0]  # one slider: the first
        grid = np.unique(np.append(self.data.grid(method, policy), chosen))
        options = list({_label(policy, v): float(v) for v in grid[::-1]}.items())[::-1]  # labels unique
        self.param.options = options
        self.param.description = "patience" if policy == "patience" else "threshold"
        self.param.value = min((v for _, v in options), key=lambda v: abs(v - chosen))

    # events --------------------------------------------------------------------------------------
    def _on_method(self, _) -> None:
        self._quiet = True
        try:
            self._set_rules()
        finally:
            self._quiet = False
        self._refresh()

    def _on_policy(self, _) -> None:
        if self._quiet:
            return
        self._quiet = True
        try:
            self._set_grid()
        finally:
            self._quiet = False
        self._refresh()

    def _on_param(self, _) -> None:
        if not self._quiet:
            self._refresh()

    # views ---------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        method, policy = self.method.value, self.policy.value
        self.state = self.data.state(method, policy, self.param.value)
        self.summary.value = f"<b>{self.state.summary()}</b>"
        self.figure.value = figure_png(explorer_figure(self.state, self.data.curve(method, policy)))
        self._show_table()

    def _show_table(self) -> None:
        if self.state is None:
            return
        rows = self.state.wrong_early_exits if self.only_wrong.value else self.state.examples
        shown = rows.head(self.rows).assign(text=lambda t: t["text"].str.slice(0, 200))
        caption = (f"{len(rows)} wrong early exits, most confident first" if self.only_wrong.value
                   else f"{len(rows)} examples") + f"; showing {len(shown)}"
        html = shown.to_html(index=False, float_format=lambda v: f"{v:.3f}", escape=True, border=0)
        self.table.value = f"<div style='font-size:small'><p>{caption}</p>{html}</div>"


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
