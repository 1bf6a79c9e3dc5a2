"""How the leaderboard page is drawn: the interval plot's geometry and the heatmaps' cells and
colours, from the data of `arena.ratings.read.LeaderboardPage`. The page's template reads
these as ``figures``; nothing here reads the database or knows how ratings are computed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

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
