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
import os
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bot.pages.access import IAP_HEADER
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
    expected = 3 if page == "status" else 1  # one chart a KPI: three demo teams, one KPI each
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
