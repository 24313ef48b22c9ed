"""Figures for reports (matplotlib, Agg canvas: no display, no global pyplot state)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from snsrec.data.schema import SCENARIOS
from snsrec.io import atomic_path


def scenario_order(present: list[str | None]) -> list[str]:
    """The canonical scenarios first (feed, search, ...), then any others sorted."""
    known = [s for s in SCENARIOS if s in present]
    return known + sorted(s for s in present if s is not None and s not in SCENARIOS)


def ctr_by_position(events: pl.DataFrame | pl.LazyFrame, min_impressions: int = 50
                    ) -> pl.DataFrame:
    """Impressions and CTR per (scenario, position); cells with few impressions dropped."""
    frame = events.lazy() if isinstance(events, pl.DataFrame) else events
    return (frame.group_by("scenario", "position")
            .agg(impressions=pl.len(), ctr=pl.col("click").cast(pl.Float64).mean())
            .filter(pl.col("impressions") >= min_impressions)
            .sort("scenario", "position")
            .collect())


def ctr_by_position_plot(events_df: pl.DataFrame | pl.LazyFrame, path: str | Path,
                         min_impressions: int = 50, title: str = "CTR by position") -> Path:
    """PNG with one line per scenario: logged CTR against 0-based position."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    table = ctr_by_position(events_df, min_impressions)
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    order = scenario_order(table["scenario"].unique().to_list())
    for scenario in order:
        rows = table.filter(pl.col("scenario") == scenario)
        ax.plot(rows["position"].to_numpy(), rows["ctr"].to_numpy(), marker="o", markersize=3,
                label=scenario)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("position (0 = top)")
    ax.set_ylabel("click-through rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if order:
        ax.legend(title="scenario")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        # No timestamp in the PNG metadata: the same data gives the same bytes.
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path
