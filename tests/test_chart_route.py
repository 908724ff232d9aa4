"""``GET /charts/<team>/<date>.png``: signed, expiring, cached, through Flask's test client on a real SQLite store."""

import io
import logging
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml
from flask import Flask
from PIL import Image

from bot.chart_links import chart_path, link_expiry
from bot.pages.chart import HEIGHT, WIDTH
from bot.pages.charts import ChartCache, create_charts_blueprint
from bot.services import build_services
from bot.store import SCORE, Reading
from tests.pages import SECRET, pages_config, seeded_store, unverified_app

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)  # 15:00 in New York, the customer team's zone
TODAY = date(2026, 11, 26)
EXPIRES = link_expiry(NOW, timedelta(days=30))


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def chart_site(tmp_path, **top):
    """A Flask app with only the charts blueprint, its cache, clock and services (60 days of history)."""
    config = pages_config(tmp_path, charts={"secret": SECRET}, **top)
    clock = Clock(NOW)
    services = build_services(config, clock=clock, store_url=seeded_store(tmp_path, config, NOW))
    cache = ChartCache()
    app = Flask("charts-test")
    app.register_blueprint(create_charts_blueprint(services, cache))
    return app, cache, clock, services


def url(team="customer", day=TODAY, kpi="", expires=EXPIRES, secret=SECRET):
    return chart_path(secret, team, day, kpi, expires)


def test_a_signed_chart_is_a_png_at_its_size(tmp_path):
    app, *_ = chart_site(tmp_path)
    response = app.test_client().get(url())
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert Image.open(io.BytesIO(response.data)).size == (WIDTH, HEIGHT)
    assert response.headers["Cache-Control"] == "public, max-age=300"  # today's chart changes with new readings
    past = app.test_client().get(url(day=TODAY - timedelta(days=3)))
    assert past.status_code == 200
    assert past.headers["Cache-Control"] == "public, max-age=86400"
    assert past.data != response.data


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (url()[:-3] + "AAA", "wrong signature"),
        (url(secret="another-secret-0123456789abcdef"), "wrong signature"),
        (url().replace("/customer/", "/security/"), "wrong signature"),
        (url().replace(TODAY.isoformat(), "2026-11-25"), "wrong signature"),
        (url().replace(f"exp={EXPIRES}", f"exp={EXPIRES + 86400}"), "wrong signature"),
        (url() + "&kpi=open-issues", "wrong signature"),
        (url().split("&sig=")[0], "missing exp or sig"),
        (url().replace(f"exp={EXPIRES}&", ""), "missing exp or sig"),
        (url().replace(TODAY.isoformat(), "yesterday"), "not a date"),
    ],
)
def test_a_wrong_or_missing_signature_is_403(tmp_path, caplog, path, reason):
    app, cache, *_ = chart_site(tmp_path)
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get(path)
    assert response.status_code == 403
    assert reason in caplog.text
    assert SECRET not in caplog.text
    assert cache.renders == 0


def test_an_expired_link_is_403_from_the_second_after_its_expiry(tmp_path):
    app, _, clock, _ = chart_site(tmp_path)
    expires = int((NOW + timedelta(hours=1)).timestamp())
    client = app.test_client()
    clock.now = NOW + timedelta(hours=1)
    assert client.get(url(expires=expires)).status_code == 200
    clock.now = NOW + timedelta(hours=1, seconds=1)
    assert client.get(url(expires=expires)).status_code == 403


def test_well_signed_links_to_unknown_teams_kpis_or_future_days_are_404(tmp_path):
    client = chart_site(tmp_path)[0].test_client()
    assert client.get(url(team="gone")).status_code == 404
    assert client.get(url(kpi="no-such-kpi")).status_code == 404
    assert client.get(url(day=TODAY + timedelta(days=1))).status_code == 404


def test_a_multi_kpi_team_names_the_kpi(tmp_path):
    teams = yaml.safe_load(pages_config(tmp_path).path.read_text())["teams"]
    teams[0]["kpis"].append(teams[0]["kpis"][0] | {"id": "urgent", "name": "Urgent issues"})
    app, *_ = chart_site(tmp_path, teams=teams)
    client = app.test_client()
    assert client.get(url()).status_code == 404
    first, second = client.get(url(kpi="open-issues")), client.get(url(kpi="urgent"))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.data != second.data  # each KPI has its own title


def test_a_burst_of_views_renders_once_and_a_new_reading_renders_again(tmp_path):
    app, cache, _, services = chart_site(tmp_path)
    results = []

    def view():
        results.append(app.test_client().get(url()).status_code)

    threads = [threading.Thread(target=view) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [200] * 20
    assert cache.renders == 1
    services.store.add_readings(
        [Reading("customer", "open-issues", NOW - timedelta(minutes=5), SCORE, {"Critical": 9}, 90.0)]
    )
    app.test_client().get(url())
    assert cache.renders == 2


def test_a_30_day_series_with_gaps_is_served(tmp_path):
    app, _, _, services = chart_site(tmp_path)
    series = services.store.daily_series("customer", services.config.zone(services.config.team("customer")), 30, NOW)
    missing = [day for day, reading in series["open-issues"] if reading is None]
    assert missing, "the generated history has days without a reading"
    response = app.test_client().get(url())
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.data)).size == (WIDTH, HEIGHT)


def test_without_a_secret_charts_are_off_with_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        app = unverified_app(tmp_path, public_url="https://scorebot.example.com")
    assert caplog.text.count("charts are off") == 1
    assert app.test_client().get(url()).status_code == 404
