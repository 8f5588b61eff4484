"""The bar chart of speedups per case (optional: needs matplotlib).

One panel per timed computation (forward, backward, value-and-grad); for each
case, jaxgrad's speedup over ``jax.grad`` and over torch, i.e. the other
implementation's median time divided by jaxgrad's, on a log scale. Cases
without a correct pair of results have no bar.
"""

from __future__ import annotations

import pathlib

from ._measure import MODES
from ._report import write_atomically

MISSING_MATPLOTLIB = ("chart skipped: matplotlib is not installed (pip install "
                      "'jaxgrad[plot]' to draw it)")
_TITLES = {"forward": "forward", "backward": "backward (VJP, residuals ready)",
           "value_and_grad": "value and gradient"}
_SERIES = {"vs_autodiff": "over jax.grad", "vs_torch": "over torch"}


def speedups(record: dict, mode: str) -> dict[str, list[float | None]]:
    """Per series, jaxgrad's speedup for each case (1 / time ratio), or None.

    >>> speedups({"cases": [{"ratios": {"forward": {"vs_autodiff": 0.5,
    ...                                               "vs_torch": None}}}]},
    ...          "forward")
    {'vs_autodiff': [2.0], 'vs_torch': [None]}
    """
    return {series: [None if c["ratios"][mode][series] is None
                     else 1 / c["ratios"][mode][series] for c in record["cases"]]
            for series in _SERIES}


def _panel(axis, ticker, record: dict, mode: str) -> None:
    names = [case["name"] for case in record["cases"]]
    width = 0.4
    for i, (series, values) in enumerate(speedups(record, mode).items()):
        positions = [j + (i - 0.5) * width for j, v in enumerate(values)
                     if v is not None]
        # Bars start at 1 (no speedup) and go up or down to the value.
        heights = [v - 1 for v in values if v is not None]
        axis.bar(positions, heights, width, bottom=1.0,
                 label=f"jaxgrad {_SERIES[series]}")
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_yscale("log")
    axis.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())
    axis.set_ylabel("speedup")
    axis.set_title(_TITLES[mode], fontsize=10)
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
    axis.legend(fontsize=8)


def write_chart(record: dict, path: pathlib.Path) -> str | None:
    """Draw the chart into ``path`` (PNG); a message instead when it cannot."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        return MISSING_MATPLOTLIB
    opts = record["options"]
    figure, axes = plt.subplots(len(MODES), 1, sharex=True,
                                figsize=(max(8, len(record["cases"]) * 0.9 + 2), 10))
    for axis, mode in zip(axes, MODES):
        _panel(axis, ticker, record, mode)
    figure.suptitle(f"jaxgrad speedup ({opts['suite']}, {opts['dtype']}, "
                    f"{opts['backend']}); above 1: jaxgrad is faster", fontsize=11)
    figure.tight_layout()
    try:
        write_atomically(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(figure)
    return None
