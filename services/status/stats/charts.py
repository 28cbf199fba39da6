"""Charts as server-side SVG: a heat map of the week, stacked bars and lines over time.

Pure functions from numbers to markup (no script, no inline style: the pages' CSP allows
neither). Colours come with words (legends, labels, a title per mark), and every chart has a
<title> and <desc>; the page puts the same numbers in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from services.status.stats.desktime import WEEKDAYS, hour_label

WIDTH = 960
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d8dee4"
DASH = "\u2013"
HEAT = ("#f3f6fa", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b")
"""Sequential blues: empty, then six steps to the busiest hour."""


@dataclass(frozen=True)
class Series:
    """One named line or bar layer."""

    name: str
    colour: str
    values: Sequence[float | None]
    dashed: bool = False


def _markup(parts: list[str]) -> Markup:
    """The chart as markup: every text and attribute in `parts` went through escape()."""
    return Markup("".join(parts))  # noqa: S704 (the parts are escaped as they are built)


def _text(x: float, y: float, body: str, **attrs: str | float) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(body)}</text>'


def _open(chart_id: str, height: float, title: str, desc: str, width: float = WIDTH) -> str:
    return (
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family="system-ui, sans-serif" '
        f'font-size="13" fill="{INK}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
    )


def heat_step(count: int, busiest: int) -> int:
    """Which of the colour steps a cell gets (0 only when empty)."""
    if count <= 0 or busiest <= 0:
        return 0
    return max(1, math.ceil(count / busiest * (len(HEAT) - 1)))


def heatmap(chart_id: str, counts: dict[tuple[int, int], int], *, title: str) -> Markup:
    """Questions by weekday (rows, Monday first) and desk hour (columns)."""
    left, top, cell_w, cell_h = 96.0, 30.0, (WIDTH - 104) / 24, 30.0
    busiest = max(counts.values(), default=0)
    total = sum(counts.values())
    peak = max(counts, key=lambda k: counts[k], default=None)
    desc = f"{total} questions."
    if peak is not None and busiest:
        desc += f" Busiest: {WEEKDAYS[peak[0]]} {hour_label(peak[1])}, {busiest}."
    height = top + 7 * cell_h + 62
    parts = [_open(chart_id, height, title, desc)]
    for hour in range(0, 24, 3):
        x = left + hour * cell_w + cell_w / 2
        parts.append(_text(x, top - 10, hour_label(hour), text_anchor="middle", fill=MUTED))
    for day in range(7):
        y = top + day * cell_h
        parts.append(_text(left - 10, y + cell_h / 2 + 4.5, WEEKDAYS[day], text_anchor="end"))
        for hour in range(24):
            count = counts.get((day, hour), 0)
            step = heat_step(count, busiest)
            x = left + hour * cell_w
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{cell_w - 2:.1f}" '
                f'height="{cell_h - 2:.1f}" rx="3" fill="{HEAT[step]}" class="cell">'
                f"<title>{escape(WEEKDAYS[day])} {escape(hour_label(hour))}: "
                f"{count} question{'s' if count != 1 else ''}</title></rect>"
            )
            if count:
                colour = "#ffffff" if step >= 4 else INK
                parts.append(
                    _text(
                        x + cell_w / 2,
                        y + cell_h / 2 + 4.5,
                        str(count),
                        text_anchor="middle",
                        fill=colour,
                        font_size=11,
                    )
                )
    parts.append(_heat_legend(left, top + 7 * cell_h + 22, busiest))
    parts.append("</svg>")
    return _markup(parts)


def _heat_legend(x: float, y: float, busiest: int) -> str:
    parts = [_text(x - 10, y + 13, "Questions", text_anchor="end", fill=MUTED)]
    steps = len(HEAT) - 1
    for step in range(len(HEAT)):
        if step == 0:
            words = "none"
        else:  # the counts heat_step puts on this step
            low = math.floor((step - 1) * busiest / steps) + 1
            high = math.floor(step * busiest / steps)
            if low > high:
                continue
            words = str(low) if low == high else f"{low}{DASH}{high}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="18" height="18" rx="3" fill="{HEAT[step]}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(_text(x + 24, y + 13.5, words, fill=MUTED))
        x += 34 + 7.5 * len(words)
    return "".join(parts)


def nice_max(value: float, *, counts: bool = False) -> tuple[float, float]:
    """A round top for an axis and its tick step (1, 2 or 5 times a power of ten); for
    `counts`, a whole step (an axis of questions reads 0, 1, 2, never 0, 0.5, 1)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if counts:
        step = max(step, 1.0)
    return step * math.ceil(value / step), step


@dataclass(frozen=True)
class Frame:
    """Where the plot area sits in a time chart (below its legend)."""

    width: float = WIDTH
    legend_rows: int = 1
    left: float = 64.0
    plot_height: float = 192.0

    @property
    def right(self) -> float:
        """The plot's right edge."""
        return self.width - 16.0

    @property
    def top(self) -> float:
        """The plot's top edge."""
        return 20.0 + 24.0 * self.legend_rows

    @property
    def bottom(self) -> float:
        """The plot's bottom edge (the x labels sit below it)."""
        return self.top + self.plot_height

    @property
    def height(self) -> float:
        """The whole chart's height."""
        return self.bottom + 34.0


def _axes(
    frame: Frame, periods: Sequence[str], top_value: float, step: float, fmt: Callable[[float], str]
) -> list[str]:
    parts = []
    span = frame.bottom - frame.top
    value = 0.0
    while value <= top_value + 1e-9:
        y = frame.bottom - span * value / top_value
        parts.append(
            f'<line x1="{frame.left:.1f}" x2="{frame.right:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(_text(frame.left - 8, y + 4.5, fmt(value), text_anchor="end", fill=MUTED))
        value += step
    slot = (frame.right - frame.left) / max(1, len(periods))
    every = max(1, math.ceil(len(periods) / max(3, int((frame.right - frame.left) / 80))))
    for i, period in enumerate(periods):
        if i % every == 0:
            x = frame.left + slot * (i + 0.5)
            parts.append(_text(x, frame.bottom + 20, period, text_anchor="middle", fill=MUTED))
    return parts


def _legend_layout(series: Sequence[Series], width: float) -> list[tuple[float, float]]:
    """Where each legend entry starts, wrapping onto new rows within the width."""
    places, x, y = [], Frame().left, 20.0
    for s in series:
        entry = 36 + 7.4 * len(s.name)
        if x + entry > width - 16 and x > Frame().left:
            x, y = Frame().left, y + 24
        places.append((x, y))
        x += entry + 12
    return places


def _legend(series: Sequence[Series], places: list[tuple[float, float]]) -> str:
    parts = []
    for s, (x, y) in zip(series, places, strict=True):
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<line x1="{x:.1f}" x2="{x + 22:.1f}" y1="{y - 4:.1f}" y2="{y - 4:.1f}" '
            f'stroke="{s.colour}" stroke-width="4"{dash}/>'
        )
        parts.append(_text(x + 28, y, s.name))
    return "".join(parts)


def _frame(series: Sequence[Series], width: float) -> tuple[Frame, str]:
    places = _legend_layout(series, width)
    rows = 1 + round((places[-1][1] - 20) / 24) if places else 1
    return Frame(width=width, legend_rows=rows), _legend(series, places)


def stacked_bars(
    chart_id: str,
    periods: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    width: float = WIDTH,
) -> Markup:
    """Counts per period, one stacked layer per series, with a legend above."""
    frame, legend = _frame(series, width)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(periods))]
    top_value, step = nice_max(max(totals, default=0), counts=True)
    parts = [_open(chart_id, frame.height, title, desc, width), legend]
    parts += _axes(frame, periods, top_value, step, lambda v: f"{v:,.0f}")
    slot = (frame.right - frame.left) / max(1, len(periods))
    width = max(2.0, slot * 0.72)
    span = frame.bottom - frame.top
    for i, period in enumerate(periods):
        base = frame.bottom
        x = frame.left + slot * i + (slot - width) / 2
        for s in series:
            value = s.values[i] or 0
            if not value:
                continue
            h = span * value / top_value
            base -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{s.colour}"><title>{escape(period)}, {escape(s.name)}: '
                f"{value:,.0f}</title></rect>"
            )
    parts.append("</svg>")
    return _markup(parts)


def lines(
    chart_id: str,
    periods: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    width: float = WIDTH,
    counts: bool = False,
) -> Markup:
    """Values per period, one line per series (gaps where a value is missing); `counts`:
    whole numbers, so the axis has whole ticks."""
    frame, legend = _frame(series, width)
    values = [v for s in series for v in s.values if v is not None]
    top_value, step = nice_max(max(values, default=0), counts=counts)
    parts = [_open(chart_id, frame.height, title, desc, width), legend]
    parts += _axes(frame, periods, top_value, step, fmt)
    slot = (frame.right - frame.left) / max(1, len(periods))
    span = frame.bottom - frame.top
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        run: list[str] = []
        points = []
        for i, value in enumerate([*s.values, None]):
            if value is None:
                if len(run) > 1:
                    parts.append(
                        f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.colour}" '
                        f'stroke-width="2.5" stroke-linejoin="round"{dash}/>'
                    )
                run = []
                continue
            x = frame.left + slot * (i + 0.5)
            y = frame.bottom - span * value / top_value
            run.append(f"{x:.1f},{y:.1f}")
            points.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{s.colour}">'
                f"<title>{escape(periods[i])}, {escape(s.name)}: {escape(fmt(value))}</title>"
                "</circle>"
            )
        parts += points
    parts.append("</svg>")
    return _markup(parts)
