"""The overview's throughput chart: inline SVG geometry for the last hour's per-minute series.

Computed here, not in the browser, so the page draws without JavaScript; the overview stream sends
the same geometry and the page's script only swaps attributes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# The SVG's viewBox and the plot area inside it (room on the left for the scale's labels).
WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 632, 12, 180
# Share of a minute's width that its failure bar covers.
BAR_SHARE = 0.6


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int


def _scale(series: list[list[int]]) -> int:
    """The top of the y axis: the largest value, at least 1."""
    return max([1, *(value for values in series for value in values)])


def chart(lines: dict[str, list[int]], failures: list[int]) -> dict[str, Any]:
    """{"max", "width", "height", "lines": {name: "x,y x,y ..."}, "bars": [Bar...], "baseline"}."""
    top = _scale([*lines.values(), failures])
    buckets = max([len(failures), *(len(values) for values in lines.values()), 2])
    step = (RIGHT - LEFT) / (buckets - 1)

    def y(value: int) -> float:
        return round(BOTTOM - value * (BOTTOM - TOP) / top, 1)

    points = {
        name: " ".join(f"{round(LEFT + i * step, 1)},{y(value)}" for i, value in enumerate(values))
        for name, values in lines.items()
    }
    width = round(step * BAR_SHARE, 1)
    bars = [
        Bar(x=round(LEFT + i * step - width / 2, 1), y=y(count), width=width, height=round(BOTTOM - y(count), 1),
            count=count)
        for i, count in enumerate(failures)
        if count
    ]
    return {"max": top, "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": RIGHT, "top": TOP,
            "bottom": BOTTOM, "lines": points, "bars": [asdict(bar) for bar in bars]}
