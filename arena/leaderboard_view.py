"""How the leaderboard page is drawn: the interval plot's geometry and the heatmaps' cells and
colours, from the data of `arena.ratings.read.LeaderboardPage`. The page's template reads
these as ``figures``; nothing here reads the database or knows how ratings are computed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _

from arena.ratings.history import HistoryPoint
from arena.ratings.read import LeaderboardPage, PairMatrices, Row

_PLOT_WIDTH = 640
_PLOT_LABEL = 220
_PLOT_ROW = 20
# Heatmap tones: a hue mixed with white in TONE_STEPS + 1 steps, drawn by the classes
# .hm-blue-0 … .hm-red-10 of static/arena/arena.css (classes, not style= attributes: the
# Content-Security-Policy forbids inline styles). Steps above DARK_FROM take white text.
HUES = {"blue": (33, 102, 172), "red": (178, 24, 43)}
TONE_STEPS = 10
DARK_FROM = 7


@dataclass(frozen=True)
class PlotRow:
    name: str
    y: int
    x: float
    x_lower: float
    x_upper: float
    label_y: int


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    left: int
    ticks: list[tuple[float, str]]
    rows: list[PlotRow]


@dataclass(frozen=True)
class Cell:
    text: str
    title: str
    tone: str  # the CSS class of its colours


@dataclass(frozen=True)
class Matrix:
    names: list[str]
    rows: list[tuple[str, list[Cell]]]


@dataclass(frozen=True)
class LeaderboardFigures:
    """The interval plot and the two heatmaps (win rates, battle counts) of one page; None
    where the page has nothing to draw."""

    plot: Plot | None
    win_rates: Matrix | None
    battles: Matrix | None


def leaderboard_figures(page: LeaderboardPage) -> LeaderboardFigures:
    """What the template draws for ``page``."""
    pairs = page.pairs
    return LeaderboardFigures(
        plot=_plot(page.raw_rows),
        win_rates=None if pairs is None else _matrix(pairs, win_rates=True),
        battles=None if pairs is None else _matrix(pairs, win_rates=False),
    )


def _plot(rows: list[Row]) -> Plot | None:
    """Geometry of the interval plot: one row per contestant, a bar from the lower to the
    upper bound and a dot at the rating."""
    if not rows:
        return None
    lows = [r.ci_lower if r.ci_lower is not None else r.rating for r in rows]
    highs = [r.ci_upper if r.ci_upper is not None else r.rating for r in rows]
    low, high = min(lows), max(highs)
    span = max(high - low, 1.0)
    low, high = low - 0.05 * span, high + 0.05 * span
    inner = _PLOT_WIDTH - _PLOT_LABEL - 10

    def x(value: float) -> float:
        return round(_PLOT_LABEL + (value - low) / (high - low) * inner, 1)

    step = _tick_step(high - low)
    first = (low // step + 1) * step
    ticks = []
    value = first
    while value < high:
        ticks.append((x(value), f"{value:.0f}"))
        value += step
    plot_rows = [
        PlotRow(
            name=r.name,
            y=20 + k * _PLOT_ROW,
            x=x(r.rating),
            x_lower=x(lo),
            x_upper=x(hi),
            label_y=24 + k * _PLOT_ROW,
        )
        for k, (r, lo, hi) in enumerate(zip(rows, lows, highs, strict=True))
    ]
    return Plot(
        width=_PLOT_WIDTH,
        height=30 + len(rows) * _PLOT_ROW,
        left=_PLOT_LABEL,
        ticks=ticks,
        rows=plot_rows,
    )


def _tick_step(span: float) -> float:
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if span / step <= 8:
            return float(step)
    return 2000.0


def mix(colour: tuple[int, int, int], amount: float) -> str:
    """``colour`` blended with white; ``amount`` 0 is white, 1 is the colour."""
    amount = min(max(amount, 0.0), 1.0)
    r, g, b = (round(255 + (c - 255) * amount) for c in colour)
    return f"#{r:02x}{g:02x}{b:02x}"


def _tone(hue: str, amount: float) -> str:
    """The class of ``hue`` at ``amount`` (0 white, 1 the full hue), to the nearest step."""
    return f"hm-{hue}-{round(min(max(amount, 0.0), 1.0) * TONE_STEPS)}"


def _win_cell(value: float | None, battles: int) -> Cell:
    if value is None or battles == 0:
        return Cell("", _("no battles"), "hm-none")
    amount = min(abs(value - 0.5) * 4, 1.0)  # full colour at 0.25 and 0.75
    title = _("%(rate).0f%% over %(n)d battles") % {"rate": value * 100, "n": battles}
    return Cell(f"{value:.2f}", title, _tone("blue" if value >= 0.5 else "red", amount))


def _count_cell(battles: int, largest: int) -> Cell:
    if not battles:
        return Cell("", _("no battles"), "hm-empty")
    amount = (battles / max(largest, 1)) ** 0.5
    title = _("%(n)d battles") % {"n": battles}
    return Cell(str(battles), title, _tone("blue", amount))


_DIAGONAL = Cell("", "", "hm-diag")


def _matrix(pairs: PairMatrices, *, win_rates: bool) -> Matrix:
    """A heatmap of ``pairs``: win rates of the row over the column when ``win_rates``,
    else battle counts."""
    names, battles = pairs.names, pairs.battles
    k = len(names)
    largest = max((int(battles[i][j]) for i in range(k) for j in range(k)), default=0)
    rows = []
    for i in range(k):
        cells = []
        for j in range(k):
            n = int(battles[i][j])
            if i == j:
                cells.append(_DIAGONAL)
            elif win_rates:
                cells.append(_win_cell(pairs.win_rates[i][j], n))
            else:
                cells.append(_count_cell(n, largest))
        rows.append((names[i], cells))
    return Matrix(names=names, rows=rows)


# Rating history ------------------------------------------------------------------------------

_HISTORY_WIDTH = 640
_HISTORY_HEIGHT = 260
_HISTORY_LEFT = 48
_HISTORY_RIGHT = 150
_HISTORY_TOP = 12
_HISTORY_BOTTOM = 24
# Lines drawn at most (the leaders of the latest snapshot); their colours are the classes
# .hist-0 … .hist-7 of static/arena/arena.css.
HISTORY_LINES = 8


@dataclass
class HistoryLine:
    name: str
    tone: str  # CSS class
    line: str  # SVG polyline points
    band: str  # SVG polygon points: the 95% interval band
    label_y: float
    last_x: float
    last_y: float


@dataclass(frozen=True)
class HistoryPlot:
    width: int
    height: int
    left: int
    right: int
    ticks: list[tuple[float, str]]  # y, rating
    times: list[tuple[float, str]]  # x, date
    lines: list[HistoryLine]
    points: int


def history_figure(points: list[HistoryPoint]) -> HistoryPlot | None:
    """Each leading contestant's rating over time as a line inside its interval band; None
    with fewer than two snapshots."""
    if len(points) < 2 or not points[-1].rows:
        return None
    leaders = [r.name for r in points[-1].rows[:HISTORY_LINES]]
    series = {
        name: [(p.computed_at, r) for p in points for r in p.rows if r.name == name]
        for name in leaders
    }
    values = [v for rows in series.values() for _t, r in rows for v in (r.ci_lower, r.ci_upper)]
    low, high = min(values), max(values)
    span = max(high - low, 1.0)
    low, high = low - 0.05 * span, high + 0.05 * span
    start, end = points[0].computed_at, points[-1].computed_at
    seconds = max((end - start).total_seconds(), 1.0)
    inner_w = _HISTORY_WIDTH - _HISTORY_LEFT - _HISTORY_RIGHT
    inner_h = _HISTORY_HEIGHT - _HISTORY_TOP - _HISTORY_BOTTOM

    def x(at: dt.datetime) -> float:
        return round(_HISTORY_LEFT + (at - start).total_seconds() / seconds * inner_w, 1)

    def y(value: float) -> float:
        return round(_HISTORY_TOP + (high - value) / (high - low) * inner_h, 1)

    lines = []
    for k, name in enumerate(leaders):
        rows = series[name]
        upper = [f"{x(t)},{y(r.ci_upper)}" for t, r in rows]
        lower = [f"{x(t)},{y(r.ci_lower)}" for t, r in reversed(rows)]
        last_t, last = rows[-1]
        lines.append(
            HistoryLine(
                name=name,
                tone=f"hist-{k % HISTORY_LINES}",
                line=" ".join(f"{x(t)},{y(r.rating)}" for t, r in rows),
                band=" ".join(upper + lower),
                label_y=y(last.rating) + 4,
                last_x=x(last_t),
                last_y=y(last.rating),
            )
        )
    _spread_labels(lines)
    step = _tick_step(high - low)
    ticks = []
    value = (low // step + 1) * step
    while value < high:
        ticks.append((y(value), f"{value:.0f}"))
        value += step
    times = [(x(at), f"{at:%Y-%m-%d}") for at in (start, end)]
    if (end - start) < dt.timedelta(days=2):
        times = [(x(at), f"{at:%m-%d %H:%M}") for at in (start, end)]
    return HistoryPlot(
        width=_HISTORY_WIDTH,
        height=_HISTORY_HEIGHT,
        left=_HISTORY_LEFT,
        right=_HISTORY_WIDTH - _HISTORY_RIGHT,
        ticks=ticks,
        times=times,
        lines=lines,
        points=len(points),
    )


def _spread_labels(lines: list[HistoryLine]) -> None:
    """Move end-of-line labels apart so that no two overlap (12 px apart at least)."""
    order = sorted(range(len(lines)), key=lambda k: lines[k].label_y)
    last = -1e9
    for k in order:
        wanted = max(lines[k].label_y, last + 12)
        lines[k].label_y = round(wanted, 1)
        last = wanted
