"""A KPI's daily trend as a PNG, drawn with Pillow.

One point per day (None: no reading that day, drawn as a gap), the target and
warning levels as coloured bands (good on the side the KPI's direction favours),
the latest value labelled, with a ▲ or ▼ beside it when it moved since the day
before it: green when that made the KPI better, red when worse. The picture has
an opaque light background and dark text, so it reads the same in Chat's
light and dark themes; it is drawn at twice its size and averaged down, which
smooths the lines (bench/bench_chart.py compares it with matplotlib).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from PIL import Image, ImageDraw, ImageFont

from scoring import Trend, trend_of

WIDTH, HEIGHT = 600, 270
"""The PNG's size: Chat scales an image to the card's width (350 to 500 px), so the fonts are large."""
SCALE = 2
"""Drawn this many times larger, then scaled down (anti-aliasing)."""

BACKGROUND = (255, 255, 255)
TEXT = (32, 33, 36)
MUTED = (95, 99, 104)
LINE = (26, 115, 232)
GOOD_BAND = (230, 244, 234)
WARNING_BAND = (254, 247, 224)
BAD_BAND = (252, 232, 230)
GOOD_TEXT = (24, 128, 56)
WARNING_TEXT = (176, 96, 0)
BAD_TEXT = (197, 34, 31)

Point = tuple[date, float | None]


@dataclass(frozen=True)
class ChartSpec:
    """What to draw: the title, the daily points (oldest first) and the KPI's levels."""

    title: str
    points: Sequence[Point]
    target: float
    warning: float
    lower_is_better: bool = True


def render_png(spec: ChartSpec) -> bytes:
    """The chart of ``spec`` as PNG bytes (WIDTH × HEIGHT)."""
    canvas = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), BACKGROUND)
    _Drawing(canvas, spec).draw()
    out = io.BytesIO()
    canvas.reduce(SCALE).save(out, format="PNG")
    return out.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size * SCALE)


class _Drawing:
    """The geometry of one chart: plot box, scales, and the drawing steps."""

    def __init__(self, canvas: Image.Image, spec: ChartSpec) -> None:
        self.spec = spec
        self.draw_ = ImageDraw.Draw(canvas)
        s = SCALE
        self.left, self.right = 12 * s, (WIDTH - 112) * s
        self.top, self.bottom = 52 * s, (HEIGHT - 34) * s
        values = [v for _, v in spec.points if v is not None]
        levels = [spec.target, spec.warning]
        low = min([0.0, *values, *levels])
        high = max([*values, *levels, low + 1.0])
        self.low, self.high = low, high + (high - low) * 0.12
        self.title_font, self.label_font, self.value_font = _font(22), _font(17), _font(21)

    def x(self, i: int) -> float:
        count = max(len(self.spec.points) - 1, 1)
        inset = 10 * SCALE
        return self.left + inset + (self.right - self.left - 2 * inset) * i / count

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return self.bottom - (self.bottom - self.top) * share

    def draw(self) -> None:
        self._bands()
        self._title()
        self._dates()
        self._series()

    def _bands(self) -> None:
        spec, d = self.spec, self.draw_
        target_y, warning_y = self.y(spec.target), self.y(spec.warning)
        if spec.lower_is_better:
            bands = [
                (self.bottom, target_y, GOOD_BAND),
                (target_y, warning_y, WARNING_BAND),
                (warning_y, self.top, BAD_BAND),
            ]
        else:
            bands = [
                (self.top, target_y, GOOD_BAND),
                (target_y, warning_y, WARNING_BAND),
                (warning_y, self.bottom, BAD_BAND),
            ]
        for a, b, colour in bands:
            upper, lower = min(a, b), max(a, b)
            if lower > upper:
                d.rectangle((self.left, upper, self.right, lower), fill=colour)
        for level_y, colour in ((target_y, GOOD_TEXT), (warning_y, WARNING_TEXT)):
            d.line((self.left, level_y, self.right, level_y), fill=colour, width=SCALE)
        label_x = self.right + 8 * SCALE
        d.text((label_x, self.y(self.low)), _num(self.low), fill=MUTED, font=self.label_font, anchor="lm")
        d.text((label_x, target_y), f"target {_num(spec.target)}", fill=GOOD_TEXT, font=self.label_font, anchor="lm")
        warning_label_y = warning_y if abs(warning_y - target_y) >= 18 * SCALE else target_y - 18 * SCALE
        d.text(
            (label_x, warning_label_y),
            f"warning {_num(spec.warning)}",
            fill=WARNING_TEXT,
            font=self.label_font,
            anchor="lm",
        )
        d.line((self.left, self.bottom, self.right, self.bottom), fill=MUTED, width=SCALE)

    def _title(self) -> None:
        suffix = f" · {len(self.spec.points)} days"
        room = WIDTH * SCALE - 2 * self.left - self.draw_.textlength(suffix, font=self.title_font)
        title = self.spec.title
        while title and self.draw_.textlength(title, font=self.title_font) > room:
            title = title[:-2].rstrip() + "…"
        self.draw_.text((self.left, 12 * SCALE), title + suffix, fill=TEXT, font=self.title_font)

    def _dates(self) -> None:
        points = self.spec.points
        if not points:
            return
        y = self.bottom + 8 * SCALE
        picks = {0: "la", len(points) // 2: "ma", len(points) - 1: "ra"}
        for i, anchor in picks.items():
            day = points[i][0]
            self.draw_.text((self.x(i), y), f"{day:%b} {day.day}", fill=MUTED, font=self.label_font, anchor=anchor)

    def _series(self) -> None:
        d, points = self.draw_, self.spec.points
        run: list[tuple[float, float]] = []
        for i, (_, value) in enumerate([*points, (date.min, None)]):
            if value is not None:
                run.append((self.x(i), self.y(value)))
                continue
            if len(run) > 1:
                d.line(run, fill=LINE, width=3 * SCALE, joint="curve")
            for px, py in run:
                r = 3 * SCALE
                d.ellipse((px - r, py - r, px + r, py + r), fill=LINE)
            run = []
        latest = next(((i, v) for i, (_, v) in reversed(list(enumerate(points))) if v is not None), None)
        if latest is None:
            centre = ((self.left + self.right) / 2, (self.top + self.bottom) / 2)
            d.text(centre, "No readings in this period", fill=MUTED, font=self.value_font, anchor="mm")
            return
        i, value = latest
        px, py = self.x(i), self.y(value)
        r = 6 * SCALE
        d.ellipse((px - r, py - r, px + r, py + r), fill=LINE, outline=BACKGROUND, width=2 * SCALE)
        text = _num(value)
        above = py - 12 * SCALE > self.top + 10 * SCALE
        anchor = ("r" if i > len(points) // 2 else "l") + ("b" if above else "t")
        tx = px - 8 * SCALE if anchor[0] == "r" else px + 8 * SCALE
        ty = py - 8 * SCALE if above else py + 8 * SCALE
        box = d.textbbox((tx, ty), text, font=self.value_font, anchor=anchor)
        pad = 4 * SCALE
        d.rounded_rectangle(
            (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad),
            radius=pad,
            fill=BACKGROUND,
            outline=LINE,
            width=SCALE,
        )
        d.text((tx, ty), text, fill=TEXT, font=self.value_font, anchor=anchor)
        earlier = [v for _, v in points[:i] if v is not None]
        if earlier and value != earlier[-1]:
            self._arrow(
                box,
                pad,
                anchor[0] == "r",
                value > earlier[-1],
                trend_of(value - earlier[-1], self.spec.lower_is_better),
            )

    def _arrow(self, box: tuple[float, float, float, float], pad: float, left: bool, up: bool, trend: Trend) -> None:
        """A ▲ or ▼ beside the latest value's label, green when the move made the KPI better, red when worse."""
        size = (box[3] - box[1]) * 0.8
        x = box[0] - pad - 6 * SCALE - size if left else box[2] + pad + 6 * SCALE
        middle = (box[1] + box[3]) / 2
        top, bottom = middle - size / 2, middle + size / 2
        tip, base = (top, bottom) if up else (bottom, top)
        colour = GOOD_TEXT if trend is Trend.BETTER else BAD_TEXT
        self.draw_.polygon([(x, base), (x + size, base), (x + size / 2, tip)], fill=colour)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
