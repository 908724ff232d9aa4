"""Everything around a number follows its KPI's direction: a change's colour says better or worse, never up
or down, on the card, in `/score all`'s order, on the status page and in the chart, for both directions."""

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from PIL import Image

from bot.app import create_app
from bot.cards import TREND_COLOUR, team_message
from bot.config import load_config
from bot.overview import overview
from bot.pages.chart import BAD_TEXT, GOOD_TEXT, HEIGHT, WIDTH, ChartSpec, _Drawing, render_png
from bot.reports import KpiReport, TeamReport, score_reading
from bot.services import build_services
from bot.store import SCORE, Reading
from scoring import KpiRule, Status, Trend, score_kpi, trend_of

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
RED, GREEN = TREND_COLOUR[Trend.WORSE], TREND_COLOUR[Trend.BETTER]


@pytest.mark.parametrize(
    ("change", "lower_is_better", "trend"),
    [
        (5, True, Trend.WORSE),
        (-5, True, Trend.BETTER),
        (5, False, Trend.BETTER),
        (-5, False, Trend.WORSE),
        (0, True, Trend.SAME),
        (0, False, Trend.SAME),
    ],
)
def test_a_change_is_better_or_worse_by_the_kpis_direction(change, lower_is_better, trend):
    assert trend_of(change, lower_is_better) is trend
    rule = KpiRule({"x": 1}, target=10, warning=20) if lower_is_better else KpiRule({"x": 1}, 10, 5, False)
    assert score_kpi({"x": 10}, rule).trend(change) is trend


def test_the_sparkline_change_is_its_last_day_minus_its_first():
    rule = KpiRule({"x": 1}, target=10, warning=20)
    assert score_kpi({"x": 3}, rule, days=[None, 9, 4, None, 3]).spark_change == -6
    assert score_kpi({"x": 3}, rule, days=[None, 3]).spark_change is None


def write_config(folder, teams):
    (folder / "issues.csv").write_text("team,state\n")
    data = {
        "chat": {"verify": False},
        "status": {"access": "loopback"},
        "sources": {"issues": {"type": "file", "path": "issues.csv"}},
        "teams": [
            {
                "id": team_id,
                "name": team_id.title(),
                "kpis": [
                    {
                        "id": "k",
                        "name": f"{team_id} KPI",
                        "source": "issues",
                        "count": {"where": {"team": team_id}},
                        "category": "state",
                        "weights": {"x": 1},
                        "lower_is_better": lower,
                        "target": target,
                        "warning": warning,
                    }
                ],
            }
            for team_id, lower, target, warning in teams
        ],
    }
    (folder / "scorebot.yaml").write_text(yaml.safe_dump(data))
    return load_config(folder / "scorebot.yaml")


def card_report(team, counts, previous, days):
    """``team``'s report: its KPI reads ``counts`` now, ``previous`` at the last post, ``days`` day by day."""
    kpi = team.kpis[0]
    score = score_reading(kpi, {"x": counts}, previous={"x": previous}, days=[{"x": d} for d in days])
    report = KpiReport(kpi=kpi, score=score, as_of=NOW, previous_at=NOW - timedelta(days=1), since_post=True)
    return TeamReport(team=team, kpis=(report,), generated_at=NOW, zone="UTC")


@pytest.fixture
def higher_and_lower(tmp_path):
    config = write_config(tmp_path, [("closed", False, 50, 30), ("opened", True, 20, 40)])
    return config.team("closed"), config.team("opened")


def paragraph(message):
    sections = message["cardsV2"][0]["card"]["sections"]
    return sections[1]["widgets"][-1]["textParagraph"]["text"]


def test_a_higher_is_better_kpi_dropping_from_good_to_bad_is_a_red_down_arrow_on_the_card(higher_and_lower):
    higher, _ = higher_and_lower
    report = card_report(higher, 20, 60, [60, 55, 40, 20])
    assert report.kpis[0].score.status is Status.BAD
    message = team_message(report, refresh_function="refresh")
    text = paragraph(message)
    assert f'<font color="{RED}">▼ −40 vs last post Wed 15:00</font>' in text, text
    assert re.search(f'<font color="{RED}"><i>14 days [▁-█]+</i></font>', text), "the trend is worse: red"
    assert "🔴 Bad" in str(message)
    assert "open items · higher is better" in str(message) and "warning down to 30" in str(message)


def test_a_higher_is_better_kpi_rising_is_a_green_up_arrow(higher_and_lower):
    higher, _ = higher_and_lower
    text = paragraph(team_message(card_report(higher, 60, 20, [20, 40, 60]), refresh_function=None))
    assert f'<font color="{GREEN}">▲ +40 vs last post Wed 15:00</font>' in text
    assert f'<font color="{GREEN}"><i>14 days' in text


@pytest.mark.parametrize(("now", "before", "colour", "arrow"), [(30, 10, RED, "▲ +20"), (10, 30, GREEN, "▼ −20")])
def test_a_lower_is_better_kpi_is_red_going_up_and_green_going_down(higher_and_lower, now, before, colour, arrow):
    _, lower = higher_and_lower
    text = paragraph(team_message(card_report(lower, now, before, [before, now]), refresh_function=None))
    assert f'<font color="{colour}">{arrow} vs last post Wed 15:00</font>' in text


def test_no_change_is_grey_and_a_kpi_without_history_says_so(higher_and_lower):
    higher, _ = higher_and_lower
    text = paragraph(team_message(card_report(higher, 20, 20, [20]), refresh_function=None))
    assert f'<font color="{TREND_COLOUR[Trend.SAME]}">= no change vs last post' in text
    assert "<i>no history yet</i>" in text


def reading(team, value, when):
    return Reading(team, "k", when, SCORE, {"x": value}, float(value))


def test_score_all_puts_the_most_worsened_against_its_own_target_first_whichever_its_direction(tmp_path):
    teams = [("closed", False, 50, 30), ("opened", True, 20, 40), ("fixed", False, 50, 30), ("filed", True, 20, 40)]
    config = write_config(tmp_path, teams)
    services = build_services(config, clock=lambda: NOW, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    week = NOW - timedelta(days=7)
    services.store.add_readings(
        [
            reading("closed", 10, NOW),  # bad; fell by 40 of its target 50: worsened by 0.8
            reading("closed", 50, week),
            reading("opened", 50, NOW),  # bad; rose by 10 of its target 20: worsened by 0.5
            reading("opened", 40, week),
            reading("fixed", 20, NOW),  # bad; rose by 15: better
            reading("fixed", 5, week),
            reading("filed", 60, NOW),  # bad; fell by 30: better
            reading("filed", 90, week),
        ]
    )
    glances = overview(config, services.store, NOW)
    assert [g.team.id for g in glances] == ["closed", "opened", "fixed", "filed"]
    assert [g.worsening for g in glances] == [0.8, 0.5, -0.3, -1.5]


def status_client(tmp_path, lower_is_better, values):
    target, warning = (20, 40) if lower_is_better else (50, 30)
    config = write_config(tmp_path, [("team", lower_is_better, target, warning)])
    services = build_services(config, clock=lambda: NOW, store_url=f"sqlite:///{tmp_path / 'store.db'}")
    services.store.add_readings(
        [reading("team", v, NOW - timedelta(days=len(values) - 1 - i)) for i, v in enumerate(values)]
    )
    return create_app(services=services, allow_unverified=True).test_client()


@pytest.mark.parametrize(
    ("lower_is_better", "values", "trend", "arrow"),
    [(False, [60, 20], "worse", "▼ −40"), (False, [20, 60], "better", "▲ +40"), (True, [20, 60], "worse", "▲ +40")],
)
def test_the_status_page_colours_a_change_by_the_kpis_direction(tmp_path, lower_is_better, values, trend, arrow):
    html = status_client(tmp_path, lower_is_better, values).get("/status").get_data(as_text=True)
    assert f'<span class="change {trend}">{arrow} vs Wed 25 Nov</span> <span class="meta">({trend})</span>' in html
    assert ".change.worse { color: #c5221f; }" in html


def coloured_pixels(image, colour, box, skip_rows=()):
    left, top, right, bottom = box
    return sum(
        1
        for x in range(left, right)
        for y in range(top, bottom)
        if y not in skip_rows and all(abs(a - b) < 30 for a, b in zip(image.getpixel((x, y)), colour, strict=True))
    )


def arrow_colours(spec):
    """Strong red and strong green pixels in the plot (the level lines left out): the arrow's colour."""
    image = Image.open(io.BytesIO(render_png(spec)))
    drawing = _Drawing(Image.new("RGB", (WIDTH * 2, HEIGHT * 2)), spec)
    box = (drawing.left // 2, drawing.top // 2, drawing.right // 2, drawing.bottom // 2)
    lines = {round(drawing.y(level) / 2) + d for level in (spec.target, spec.warning) for d in range(-2, 3)}
    return coloured_pixels(image, BAD_TEXT, box, lines), coloured_pixels(image, GOOD_TEXT, box, lines)


DAYS = [datetime(2026, 11, 1 + i, tzinfo=UTC).date() for i in range(10)]


@pytest.mark.parametrize(
    ("lower_is_better", "last", "red"),
    [(False, 20.0, True), (False, 80.0, False), (True, 80.0, True), (True, 20.0, False)],
    ids=["higher-drops", "higher-rises", "lower-rises", "lower-drops"],
)
def test_the_chart_marks_the_latest_move_red_when_worse_and_green_when_better(lower_is_better, last, red):
    target, warning = (40.0, 70.0) if lower_is_better else (50.0, 30.0)
    points = [(day, 55.0) for day in DAYS[:-1]] + [(DAYS[-1], last)]
    reds, greens = arrow_colours(ChartSpec("KPI", points, target, warning, lower_is_better))
    assert (reds > 20, greens > 20) == (red, not red), (reds, greens)


def test_the_chart_draws_no_arrow_when_the_latest_value_did_not_move():
    points = [(day, 55.0) for day in DAYS]
    assert arrow_colours(ChartSpec("KPI", points, 50.0, 30.0, False)) == (0, 0)
