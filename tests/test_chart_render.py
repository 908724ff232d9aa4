"""The trend chart: a 30-day series with gaps renders as a legible, opaque PNG."""

import io
from datetime import date, timedelta

from PIL import Image

from bot.pages.chart import BACKGROUND, HEIGHT, LINE, WIDTH, ChartSpec, _Drawing, render_png

START = date(2026, 11, 3)
GAPS = {6, 7, 15, 22}


def series(days=30, gaps=GAPS, value=lambda i: 50.0 + (i % 7) * 3):
    return [(START + timedelta(days=i), None if i in gaps else value(i)) for i in range(days)]


def picture(spec):
    png = render_png(spec)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png))


def line_pixels_in_column(image, x, top, bottom):
    """How many pixels of column ``x`` (between ``top`` and ``bottom``) are close to the series colour."""
    count = 0
    for y in range(top, bottom):
        r, g, b = image.getpixel((x, y))
        if abs(r - LINE[0]) < 40 and abs(g - LINE[1]) < 40 and abs(b - LINE[2]) < 40:
            count += 1
    return count


def geometry(spec):
    """The renderer's own x positions and plot box, in output pixels."""
    drawing = _Drawing(Image.new("RGB", (WIDTH * 2, HEIGHT * 2)), spec)
    return drawing, lambda i: round(drawing.x(i) / 2)


def test_a_30_day_series_with_gaps_renders_with_breaks_at_the_gaps():
    spec = ChartSpec("Open customer issues", series(), target=40, warning=70)
    image = picture(spec)
    assert image.size == (WIDTH, HEIGHT)
    assert image.mode == "RGB"  # opaque: the same picture on Chat's light and dark themes
    assert image.getpixel((1, 1)) == BACKGROUND
    drawing, x = geometry(spec)
    top, bottom = drawing.top // 2, drawing.bottom // 2
    # Between two missing days (6 and 7) there is no line; between two present days (2 and 3) there is.
    assert line_pixels_in_column(image, (x(6) + x(7)) // 2, top, bottom) == 0
    assert line_pixels_in_column(image, (x(2) + x(3)) // 2, top, bottom) > 0
    # Day 14 ends a run: it is drawn, and nothing leads on towards the missing day 15.
    assert line_pixels_in_column(image, (x(14) + x(15)) // 2, top, bottom) == 0
    assert line_pixels_in_column(image, x(14), top, bottom) > 0


def test_an_isolated_day_is_drawn_as_a_dot():
    points = series(days=10, gaps={0, 1, 2, 3, 5, 6, 7})
    spec = ChartSpec("One reading", points, target=40, warning=70)
    image = picture(spec)
    drawing, x = geometry(spec)
    top, bottom = drawing.top // 2, drawing.bottom // 2
    assert line_pixels_in_column(image, x(4), top, bottom) > 0
    assert line_pixels_in_column(image, (x(4) + x(5)) // 2, top, bottom) == 0


def test_a_series_without_any_reading_renders_without_a_line():
    spec = ChartSpec("Nothing yet", series(gaps=set(range(30))), target=40, warning=70)
    image = picture(spec)
    drawing, x = geometry(spec)
    assert all(line_pixels_in_column(image, x(i), drawing.top // 2, drawing.bottom // 2) == 0 for i in range(30))


def test_higher_is_better_and_large_values_render():
    spec = ChartSpec(
        "Closed this week", series(value=lambda i: 10_000.0 + i), target=9000, warning=5000, lower_is_better=False
    )
    assert picture(spec).size == (WIDTH, HEIGHT)
