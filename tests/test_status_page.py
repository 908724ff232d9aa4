"""What the status pages say, through Flask's test client, on a real SQLite store with generated history."""

import re
import time
from datetime import UTC, datetime, timedelta

import yaml

from bot.chart_links import check
from bot.settings_view import CACHE_SECONDS as SETTINGS_CACHE_SECONDS
from bot.store import Store
from bot.team_settings import save_settings
from tests.pages import SECRET, pages_config, unverified_app

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
WEBHOOK = "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=KEY-SECRET-123&token=TOKEN-SECRET-456"


def site(tmp_path, **top):
    settings = {"status": {"access": "loopback"}, "charts": {"secret": SECRET}} | top
    return unverified_app(tmp_path, clock=lambda: NOW, history_at=NOW, **settings).test_client()


def text_of(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_overview_shows_every_team_with_its_state_posts_and_chart(tmp_path):
    response = site(tmp_path).get("/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    text = text_of(html)
    for name in ("Customer Issues", "Performance", "Security"):
        assert name in text
    assert re.search(r"Open customer issues \d+ · [▲▼=] ", text)
    assert "last post: delivered" in text
    assert "failed Mon 23 Nov 09:00 EST · rejected by the target" in text  # three days before NOW, New York time
    assert "next post Thu 26 Nov 15:01 EST" in text  # the customer team's every-minute schedule
    assert re.search(r"demo file 6 Thu 26 Nov \d\d:\d\d CET", text)  # the source's last successful read
    assert re.search(r"Search p95 latency \d+ ms · ", text), "a value KPI with its unit"
    charts = re.findall(r'<img class="chart" src="([^"]+)"', html)
    assert len(charts) == 6
    for src in charts:
        team, day = re.match(r"/charts/([a-z]+)/(\d{4}-\d\d-\d\d)\.png", src).groups()
        query = dict(part.split("=", 1) for part in src.split("?", 1)[1].replace("&amp;", "&").split("&"))
        kpi = query.get("kpi", "")  # named for a team of several KPIs
        check(SECRET, team, datetime.fromisoformat(day).date(), kpi, query["exp"], query["sig"], NOW)
        check(
            SECRET, team, datetime.fromisoformat(day).date(), kpi, query["exp"], query["sig"], NOW + timedelta(hours=20)
        )


def test_a_team_page_lists_its_days_with_gaps_and_its_posts(tmp_path):
    client = site(tmp_path)
    text = text_of(client.get("/status/customer").get_data(as_text=True))
    days = re.findall(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d+ (?:Oct|Nov) (—|\d+ · \d\d:\d\d · (?:post|score))", text)
    assert len(days) == 30
    assert "—" in days  # a day without a reading is shown as one
    assert any(day.endswith("· post") for day in days)
    assert "rejected by the target" in text
    assert "log: rejected" in text and "log: delivered" in text
    assert client.get("/status/nobody").status_code == 404


def test_no_secret_reaches_the_pages(tmp_path):
    teams = yaml.safe_load(pages_config(tmp_path).path.read_text())["teams"]
    teams[0]["deliver"] = [{"type": "webhook", "url": WEBHOOK}]
    client = site(tmp_path, teams=teams)
    for path in ("/status", "/status/customer"):
        html = client.get(path).get_data(as_text=True)
        assert "webhook:spaces/AAAA" in html
        for secret in ("KEY-SECRET-123", "TOKEN-SECRET-456", SECRET, "chat.googleapis.com"):
            assert secret not in html


def test_without_a_chart_secret_the_pages_show_no_images(tmp_path):
    client = site(tmp_path, charts={})
    html = client.get("/status").get_data(as_text=True)
    assert "<img" not in html
    assert "Customer Issues" in html


def test_a_teams_own_settings_show_on_its_line_and_a_snooze_instead_of_the_next_post(tmp_path):
    editable = {"editable": ["schedule", "snooze"], "editors": ["ana@example.com"]}
    client = site(tmp_path, settings=editable)
    config = pages_config(tmp_path, status={"access": "loopback"}, charts={"secret": SECRET}, settings=editable)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    changes = {"schedule": "weekdays", "snooze": {"until": "week"}}
    assert save_settings(store, config, "customer", changes, version=0, who="ana@example.com", at=NOW).saved
    store.engine.dispose()
    time.sleep(SETTINGS_CACHE_SECONDS)  # saved by another process: the page's reads them again after these

    text = text_of(client.get("/status").get_data(as_text=True))
    assert (
        "own settings: schedule 0 10 * * 1-5, snooze until Thu 3 Dec 15:00 EST (ana@example.com, Thu 26 Nov 15:00 EST)"
        in text
    )
    assert "next post snoozed until Thu 3 Dec 15:00 EST" in text
    team = text_of(client.get("/status/customer").get_data(as_text=True))
    assert "own settings: schedule 0 10 * * 1-5" in team
