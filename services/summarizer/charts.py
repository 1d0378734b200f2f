"""Charts rendered on the server as inline SVG: no scripts, no assets, nothing fetched at run time.

Each chart is a <figure class="chart"> whose data marks carry class="mark" and a <title> with the
exact value (the browser shows it on hover); `data-marks` counts them, so a test or a person can
tell an empty chart from a full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

PALETTE = (
    "#2563eb",
    "#16a34a",
    "#f59e0b",
    "#dc2626",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#ea580c",
    "#475569",
)
WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 10, 36


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


def number(value: float) -> str:
    """Short human form: 950, 12.3k, 4.56M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else f"{int(value)}"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def figure(
    chart_id: str, title: str, svg: str, marks: int, legend: str = "", note: str = ""
) -> str:
    body = svg if marks else '<p class="empty">no data yet</p>'
    return (
        f'<figure class="chart" id="{chart_id}" data-chart="{chart_id}" data-marks="{marks}">'
        f"<figcaption>{escape(title)}</figcaption>{body}{legend if marks else ''}"
        f"{note}</figure>"
    )


def legend(names: list[str]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        f"{escape(n)}</li>"
        for i, n in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


def stacked_bars(
    chart_id: str, title: str, labels: list[str], series: list[Series], note: str = ""
) -> str:
    """Bars per label, one stacked segment per series."""
    n = len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(n)]
    if not n or not series or max(totals, default=0) <= 0:
        return figure(chart_id, title, "", 0, note=note)
    top = nice_ceiling(max(totals))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar = min(48.0, max(1.0, slot * 0.8))
    parts = [_y_axis(top, plot_w, plot_h)]
    marks = 0
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar) / 2
        y = float(TOP + plot_h)
        for k, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = value / top * plot_h
            y -= h
            parts.append(
                f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)} {escape(s.name)}: '
                f"{value:,.2f}</title></rect>"
            )
            marks += 1
    parts.append(_x_labels(labels, slot, plot_h))
    svg = _svg(chart_id, title, "".join(parts))
    return figure(chart_id, title, svg, marks, legend([s.name for s in series]), note)


def horizontal_bars(chart_id: str, title: str, items: list[tuple[str, float]], note: str) -> str:
    """One labelled bar per item (negative values are drawn as zero and stated in the label)."""
    if not items:
        return figure(chart_id, title, "", 0, note=note)
    top = nice_ceiling(max(v for _, v in items))
    row, label_w = 30, 150
    width = WIDTH - label_w - 90
    parts = []
    for i, (label, value) in enumerate(items):
        y = TOP + i * row
        w = max(0.0, value) / top * width
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="mark" x="{label_w}" y="{y + 4}" width="{max(w, 1.0):.1f}" height="18" '
            f'fill="{color}"><title>{escape(label)}: {value:,.0f}</title></rect>'
            f'<text x="{label_w + max(w, 1.0) + 6:.1f}" y="{y + 16}">{value:,.0f}</text>'
        )
    svg = _svg(chart_id, title, "".join(parts), height=TOP + row * len(items) + 6)
    return figure(chart_id, title, svg, len(items), note=note)


def _svg(chart_id: str, title: str, inner: str, height: int = HEIGHT) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{chart_id}-t" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-t">{escape(title)}</title>{inner}</svg>'
    )


def _y_axis(top: float, plot_w: float, plot_h: float) -> str:
    parts = []
    for k in range(5):
        value = top * k / 4
        y = TOP + plot_h - plot_h * k / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{number(value)}</text>'
        )
    return "".join(parts)


def _x_labels(labels: list[str], slot: float, plot_h: float) -> str:
    n = len(labels)
    shown = sorted({0, n // 2, n - 1}) if n > 3 else list(range(n))
    # The outer labels align to the plot's edges when there are many bars, so none is cut off.
    anchor = {0: "start", n - 1: "end"} if n > 3 else {}
    edge = {0: LEFT, n - 1: LEFT + n * slot} if n > 3 else {}
    return "".join(
        f'<text x="{edge.get(i, LEFT + i * slot + slot / 2):.1f}" y="{TOP + plot_h + 18}" '
        f'text-anchor="{anchor.get(i, "middle")}">{escape(labels[i])}</text>'
        for i in shown
    )
