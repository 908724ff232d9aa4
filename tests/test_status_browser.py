"""The status page in a real headless browser: Debian's Chromium, driven through its ChromeDriver by Selenium.

The app runs in a real HTTP server thread on 127.0.0.1 with 60 days of generated
history. Checked at 390 px (a phone) and 1280 px wide: no console errors, every
chart image loads, nothing overflows sideways. Full-page screenshots are saved in
``test-artifacts/screenshots/`` (git-ignored). The access modes are tried from
the browser too: off and a forged IAP assertion get "Not allowed.", a valid one
(signed by a key served on loopback) gets the page.

Skipped when Chromium or ChromeDriver is missing, unless SCOREBOT_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from PIL import Image
from werkzeug.serving import make_server

from bot.app import create_app
from bot.cards import team_message
from bot.config import load_config
from bot.pages.access import IAP_HEADER
from bot.pages.chart import BAD_TEXT
from bot.services import build_services
from bot.store import SCORE, Reading
from tests.iap import AUDIENCE, IapKeys
from tests.pages import SECRET, unverified_app

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
NOW = datetime.now(UTC).replace(microsecond=0)
WIDTHS = (390, 1280)

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("SCOREBOT_REQUIRE_BROWSER") == "1":
        raise RuntimeError(
            "SCOREBOT_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed (.ci/run installs them)"
        )
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402 (after the skip: selenium drives the browser only)
from selenium.webdriver.chrome.service import Service  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="scorebot-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Served:
    """A Flask app in a real threaded HTTP server on 127.0.0.1, port chosen by the OS."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(tmp_path, **top):
    return Served(unverified_app(tmp_path, clock=lambda: NOW, history_at=NOW, charts={"secret": SECRET}, **top))


@pytest.fixture
def loopback_site(tmp_path):
    site = serve(tmp_path, status={"access": "loopback"})
    yield site
    site.close()


def set_width(driver, width):
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def page_state(driver):
    """Images (src, complete, naturalWidth), the page's and the viewport's widths."""
    return driver.execute_script(
        "return {images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),"
        " scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,"
        " innerWidth: window.innerWidth, text: document.body.innerText}"
    )


def load(driver, url):
    driver.get(url)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null))).then(() => done(true));"
    )
    return page_state(driver)


def screenshot(driver, name):
    """A full-page PNG of the current page, saved as an artifact; its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("page", "path"), [("status", "/status"), ("team", "/status/customer")])
def test_the_status_pages_load_clean_with_every_chart_at_phone_and_desktop_width(
    browser, loopback_site, width, page, path
):
    set_width(browser, width)
    browser.get_log("browser")  # drop what earlier pages logged
    state = load(browser, loopback_site.url + path)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert state["innerWidth"] == width
    charts = [image for image in state["images"] if image[0].startswith("/charts/")]
    expected = 6 if page == "status" else 1  # one chart a KPI: six demo KPIs, one of them the customer team's
    assert len(charts) == expected
    assert all(complete and natural_width > 0 for _, complete, natural_width in state["images"]), state["images"]
    assert state["scrollWidth"] <= state["clientWidth"], f"{page} overflows sideways at {width} px"
    assert "Customer Issues" in state["text"]
    assert SECRET not in browser.page_source
    shot = screenshot(browser, f"{page}-{width}")
    assert shot.stat().st_size > 10_000


def chart_sizes(driver):
    """Each chart's shown size (inside its border) and its PNG's own size, in CSS pixels."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('img.chart')).map(i => ({shown: [i.clientWidth, i.clientHeight],"
        " natural: [i.naturalWidth, i.naturalHeight], room: i.parentElement.clientWidth}))"
    )


@pytest.mark.parametrize("path", ["/status", "/status/customer"])
def test_charts_show_at_their_own_size_on_a_wide_window_and_shrink_to_fit_a_narrow_one(browser, loopback_site, path):
    set_width(browser, 1280)
    load(browser, loopback_site.url + path)
    wide = chart_sizes(browser)
    set_width(browser, 390)
    state = load(browser, loopback_site.url + path)
    narrow = chart_sizes(browser)

    assert wide and len(wide) == len(narrow)
    for chart in wide + narrow:  # its own size when there is room, else the room (inside a 1 px border)
        assert chart["natural"] == [600, 270]
        width = min(600, chart["room"] - 2)
        assert chart["shown"] == [width, round(width * 270 / 600)], chart
    if path == "/status/customer":  # one column: a wide window has room for the whole chart
        assert wide[0]["room"] > 602 and wide[0]["shown"] == wide[0]["natural"], wide
    assert all(chart["shown"][0] < 600 for chart in narrow), narrow
    assert state["scrollWidth"] <= state["clientWidth"]


def test_off_refuses_the_browser(browser, tmp_path):
    site = serve(tmp_path, status={"access": "off"})
    try:
        state = load(browser, site.url + "/status")
    finally:
        site.close()
    assert state["text"].strip() == "Not allowed."
    assert state["images"] == []


def test_loopback_refuses_a_request_a_proxy_forwarded(browser, loopback_site):
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": "203.0.113.7"}})
    try:
        state = load(browser, loopback_site.url + "/status")
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
    assert state["text"].strip() == "Not allowed."


def test_iap_shows_the_page_only_with_a_valid_assertion(browser, tmp_path):
    keys = IapKeys()
    site = serve(tmp_path, status={"access": "iap", "iap_audience": AUDIENCE, "iap_keys_url": keys.keys_url})
    browser.execute_cdp_cmd("Network.enable", {})
    set_width(browser, 1280)
    try:
        assert load(browser, site.url + "/status")["text"].strip() == "Not allowed."
        for forged in (keys.assertion(key_index=1), keys.assertion(aud="/projects/1/apps/other")):
            browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {IAP_HEADER: forged}})
            assert load(browser, site.url + "/status")["text"].strip() == "Not allowed."
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {IAP_HEADER: keys.assertion()}})
        state = load(browser, site.url + "/status")
        assert "Customer Issues" in state["text"]
        assert all(natural_width > 0 for _, _, natural_width in state["images"])
        screenshot(browser, "status-iap-1280")
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        site.close()
        keys.close()


def higher_is_better_site(folder):
    """A team whose one KPI (fixes closed in a week, higher is better) fell from good (60) to bad (20) today."""
    (folder / "issues.csv").write_text("team,priority,closed_at\n")
    kpi = {
        "id": "fixed",
        "name": "Fixes closed",
        "source": "issues",
        "kind": "closed",
        "days": 7,
        "count": {"where": {"team": "team"}, "closed_at": "closed_at"},
        "category": "priority",
        "weights": {"High": 1},
        "target": 50,
        "warning": 30,
    }
    data = {
        "chat": {"verify": False},
        "status": {"access": "loopback"},
        "charts": {"secret": SECRET},
        "sources": {"issues": {"type": "file", "path": "issues.csv"}},
        "teams": [{"id": "team", "name": "Throughput", "timezone": "UTC", "kpis": [kpi]}],
    }
    (folder / "scorebot.yaml").write_text(yaml.safe_dump(data))
    config = load_config(folder / "scorebot.yaml")
    services = build_services(config, clock=lambda: NOW, store_url=f"sqlite:///{folder / 'store.db'}")
    days = [60, 62, 58, 61, 60, 20]
    services.store.add_readings(
        [
            Reading("team", "fixed", NOW - timedelta(days=len(days) - 1 - i), SCORE, {"High": n}, float(n))
            for i, n in enumerate(days)
        ]
    )
    return services, Served(create_app(services=services, allow_unverified=True))


def red_pixels(png):
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = (image.getpixel((x, y)) for x in range(width) for y in range(height))
    return sum(1 for pixel in pixels if all(abs(a - b) < 30 for a, b in zip(pixel, BAD_TEXT, strict=True)))


def test_a_higher_is_better_kpi_falling_from_good_to_bad_is_a_red_down_arrow_everywhere(browser, tmp_path):
    """The card, the chart and the status page agree: ▼, in the colour of worse (a screenshot is saved)."""
    services, site = higher_is_better_site(tmp_path)
    try:
        set_width(browser, 1280)
        state = load(browser, site.url + "/status/team")
        change = browser.execute_script(
            "const e = document.querySelector('.change');"
            " return [e.className, e.textContent, getComputedStyle(e).color]"
        )
        day = (NOW - timedelta(days=1)).date()
        assert change == ["change worse", f"▼ −40 vs {day:%a} {day.day} {day:%b}", "rgb(197, 34, 31)"], change
        assert "(worse)" in state["text"] and "bad" in state["text"]
        [chart] = [src for src, complete, width in state["images"] if src.startswith("/charts/") and complete and width]
        png = requests.get(site.url + chart, timeout=10).content
        assert red_pixels(png) > 20, "the chart's ▼ beside the latest value is red"
        shot = screenshot(browser, "higher-is-better-falling-1280")
        assert shot.stat().st_size > 10_000
        (SCREENSHOTS / "higher-is-better-falling-chart.png").write_bytes(png)
    finally:
        site.close()
    report = services.reporter.report(services.config.teams[0], "UTC", SCORE, record=False, cached=True)
    card = json.dumps(team_message(report, refresh_function=None), ensure_ascii=False)
    assert '<font color=\\"#d93025\\">▼ −40 vs' in card, "the card's change is red too"
    assert "🔴 Bad" in card
