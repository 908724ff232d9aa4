"""Signed chart URLs, the chart settings, and the chart in the card for /score, Refresh and scheduled posts."""

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from bot.chart_links import ChartLinkError, card_images, chart_path, check, link_expiry, sign
from bot.config import load_config
from bot.delivery import Delivery
from bot.errors import ConfigError
from bot.schedule.tick import Scheduler
from bot.services import build_services
from tests import payloads as p
from tests.chat_schema import validate_message
from tests.fakes.chat import FakeChat, write_config
from tests.pages import PUBLIC, SECRET, pages_config, unverified_app

DAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def signed(team="customer", day=DAY, kpi="", expires=None):
    expires = expires or link_expiry(NOW, timedelta(days=30))
    return {
        "team_id": team,
        "day": day,
        "kpi_id": kpi,
        "expires": str(expires),
        "sig": sign(SECRET, team, day, kpi, expires),
    }


def test_a_signed_link_verifies():
    check(SECRET, now=NOW, **signed())
    check(SECRET, now=NOW, **signed(kpi="open-tickets"))


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("team_id", "security"),
        ("day", date(2026, 11, 25)),
        ("kpi_id", "other-kpi"),
        ("expires", str(link_expiry(NOW, timedelta(days=400)))),
        ("sig", sign(SECRET, "customer", DAY, "", 1)),
    ],
)
def test_changing_any_signed_part_is_refused(change, value):
    link = signed() | {change: value}
    with pytest.raises(ChartLinkError, match="wrong signature"):
        check(SECRET, now=NOW, **link)


def test_a_link_signed_with_another_secret_is_refused():
    with pytest.raises(ChartLinkError, match="wrong signature"):
        check("another-secret-0123456789abcdef", now=NOW, **signed())


def test_an_expired_link_is_refused_and_one_just_valid_is_not():
    expires = int(NOW.timestamp())
    check(SECRET, now=NOW, **signed(expires=expires))
    with pytest.raises(ChartLinkError, match="expired"):
        check(SECRET, now=NOW + timedelta(seconds=1), **signed(expires=expires))


@pytest.mark.parametrize(
    ("expires", "sig", "reason"),
    [
        (None, "x", "missing"),
        ("123", None, "missing"),
        ("12ab", "x", "not a Unix time"),
        ("-5", "x", "not a Unix time"),
    ],
)
def test_missing_or_malformed_parts_are_refused(expires, sig, reason):
    with pytest.raises(ChartLinkError, match=reason):
        check(SECRET, "customer", DAY, "", expires, sig, NOW)


def test_links_made_during_one_day_share_their_expiry():
    morning = datetime(2026, 11, 26, 0, 0, 1, tzinfo=UTC)
    night = datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC)
    lifetime = timedelta(days=30)
    assert link_expiry(morning, lifetime) == link_expiry(night, lifetime)
    assert link_expiry(morning, lifetime) == int(datetime(2026, 12, 27, tzinfo=UTC).timestamp())
    assert link_expiry(night + timedelta(seconds=2), lifetime) > link_expiry(night, lifetime)


def test_a_path_names_the_kpi_only_when_given():
    assert "kpi=" not in chart_path(SECRET, "customer", DAY, "", 1)
    assert parse_qs(urlsplit(chart_path(SECRET, "customer", DAY, "open", 1)).query)["kpi"] == ["open"]


def test_card_images_need_both_public_url_and_secret(tmp_path):
    team_now = NOW
    assert card_images(pages_config(tmp_path), pages_config(tmp_path).teams[0], team_now) == {}
    only_url = pages_config(tmp_path, public_url=PUBLIC)
    assert card_images(only_url, only_url.teams[0], team_now) == {}
    only_secret = pages_config(tmp_path, charts={"secret": SECRET})
    assert card_images(only_secret, only_secret.teams[0], team_now) == {}
    both = pages_config(tmp_path, public_url=PUBLIC + "/", charts={"secret": SECRET})
    images = card_images(both, both.teams[0], team_now)
    url = urlsplit(images["open-issues"])
    assert (url.scheme, url.netloc, url.path) == ("https", "scorebot.example.com", "/charts/customer/2026-11-26.png")


def test_the_chart_day_is_the_teams_local_day(tmp_path):
    config = pages_config(tmp_path, public_url=PUBLIC, charts={"secret": SECRET})
    late_utc = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # still the 26th in New York
    customer, security = config.team("customer"), config.team("security")
    assert "/2026-11-26.png" in card_images(config, customer, late_utc)["open-issues"]
    assert "/2026-11-27.png" in card_images(config, security, late_utc)["open-findings"]


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"public_url": "http://scorebot.example.com"}, r"public_url: must be the app's public https://"),
        ({"public_url": "https://scorebot.example.com/?x=1"}, r"public_url: must be"),
        ({"charts": {"secret": "short"}}, r"charts.secret: at least 16 characters"),
        ({"charts": {"days": 3}}, r"charts.days"),
        ({"status": {"access": "iap"}}, r"status: .*iap_audience is required"),
        ({"status": {"access": "everyone"}}, r"status.access"),
    ],
)
def test_chart_and_status_settings_are_checked(tmp_path, top, message):
    with pytest.raises(ConfigError, match=message):
        pages_config(tmp_path, **top)


def test_loopback_public_url_and_yaml_off_are_accepted(tmp_path):
    (tmp_path / "x").mkdir()
    config = pages_config(tmp_path, public_url="http://127.0.0.1:8080", status={"access": False})
    assert (config.public_url, config.status.access) == ("http://127.0.0.1:8080", "off")
    assert pages_config(tmp_path / "x", charts={"secret": ""}).charts.secret is None


def widgets_of(message):
    return [w for s in message["cardsV2"][0]["card"]["sections"] for w in s["widgets"]]


def images_of(message):
    return [w["image"] for w in widgets_of(message) if "image" in w]


def score(client, team="customer"):
    body = p.classic_slash(f" {team}")
    response = client.post("/", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    return response.get_json()


def trend_texts(message):
    """The card's text that could carry a sparkline: the comparison lines and the breakdown paragraphs."""
    return json.dumps(
        [w for w in widgets_of(message) if "decoratedText" in w or "textParagraph" in w], ensure_ascii=False
    )


def test_score_and_refresh_cards_show_the_chart_and_validate(tmp_path):
    app = unverified_app(tmp_path, clock=lambda: NOW, history_at=NOW, public_url=PUBLIC, charts={"secret": SECRET})
    client = app.test_client()
    message = score(client)
    assert validate_message(message) == []
    [image] = images_of(message)
    assert image["imageUrl"].startswith(f"{PUBLIC}/charts/customer/2026-11-26.png?exp=")
    assert image["altText"]
    assert not any(block in trend_texts(message) for block in "▁▂▃▄▅▆▇█")  # the chart replaces the sparkline
    clicked = client.post("/", data=json.dumps(p.classic_click("customer")), content_type="application/json")
    refreshed = clicked.get_json()
    assert validate_message(refreshed) == []
    assert images_of(refreshed) == [image]


def test_without_public_url_the_card_keeps_the_text_sparkline(tmp_path):
    client = unverified_app(tmp_path, clock=lambda: NOW, history_at=NOW, charts={"secret": SECRET}).test_client()
    message = score(client)
    assert validate_message(message) == []
    assert images_of(message) == []
    assert any(block in trend_texts(message) for block in "▁▂▃▄▅▆▇█")


def test_a_largest_team_card_with_twenty_charts_stays_within_chat_limits(tmp_path):
    teams = yaml.safe_load(pages_config(tmp_path).path.read_text())["teams"]
    base = teams[0]["kpis"][0]
    teams[0]["kpis"] = [base | {"id": f"kpi-{i:02}", "name": f"Customer KPI {i:02} " + "é" * 60} for i in range(20)]
    client = unverified_app(tmp_path, public_url=PUBLIC, charts={"secret": SECRET}, teams=teams).test_client()
    message = score(client)
    assert validate_message(message) == []
    assert len(images_of(message)) == 20
    assert {parse_qs(urlsplit(i["imageUrl"]).query)["kpi"][0] for i in images_of(message)} == {
        f"kpi-{i:02}" for i in range(20)
    }


def test_scheduled_webhook_and_chat_api_posts_carry_the_chart(tmp_path):
    fake = FakeChat()
    try:
        deliver = [{"type": "webhook", "url": fake.webhook_url("AAA")}, {"type": "chat_api", "space": "spaces/BBB"}]
        path = write_config(tmp_path, fake, {"ops": deliver}, schedule="0 9 * * *")
        data = yaml.safe_load(path.read_text()) | {"public_url": PUBLIC, "charts": {"secret": SECRET}}
        path.write_text(yaml.safe_dump(data))
        config = load_config(path)
        at = datetime(2026, 11, 9, 9, 0, 30, tzinfo=UTC)
        services = build_services(config, clock=lambda: at, store_url=f"sqlite:///{tmp_path / 'store.db'}")
        delivery = Delivery(
            config.chat, services.store, lambda: at, base_dir=tmp_path, backoff_seconds=0.01, pace_seconds=0
        )
        result = Scheduler(services, delivery=delivery).tick(at)
        assert result.summary() == "1 delivered"
        messages = fake.messages()
        assert len(messages) == 2
        for message in messages:
            assert validate_message(message) == []
            [image] = images_of(message)
            assert image["imageUrl"].startswith(f"{PUBLIC}/charts/ops/2026-11-09.png?exp=")
    finally:
        fake.close()


def test_a_card_too_large_with_its_charts_drops_them_before_giving_up_the_card(tmp_path):
    teams = yaml.safe_load(pages_config(tmp_path).path.read_text())["teams"]
    base = teams[0]["kpis"][0]
    teams[0]["kpis"] = [base | {"id": f"kpi-{i:02}", "name": f"K{i:02} " + "é" * 76} for i in range(20)]
    client = unverified_app(tmp_path, public_url=PUBLIC, charts={"secret": SECRET}, teams=teams).test_client()
    message = score(client)
    assert "cardsV2" in message
    assert validate_message(message) == []
    assert images_of(message) == []
