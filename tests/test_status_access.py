"""Who may see the status page: off, loopback, or Identity-Aware Proxy users (ES256 assertions, keys on loopback)."""

import logging

import pytest

from bot.config import StatusSettings
from bot.google_tokens import CertCache, CertsUnavailable
from bot.pages.access import IAP_HEADER, AccessDenied, check_access
from tests.iap import AUDIENCE, IapKeys
from tests.pages import unverified_app


@pytest.fixture
def iap():
    keys = IapKeys()
    yield keys
    keys.close()


def iap_settings(iap):
    return StatusSettings(access="iap", iap_audience=AUDIENCE, iap_keys_url=iap.keys_url)


def check_iap(iap, token, keys=None):
    headers = {} if token is None else {IAP_HEADER.lower(): token}
    return check_access(iap_settings(iap), "10.0.0.9", headers, keys or CertCache(iap.keys_url))


def test_off_refuses_everyone_even_this_machine():
    with pytest.raises(AccessDenied, match="off"):
        check_access(StatusSettings(), "127.0.0.1", {}, CertCache("http://127.0.0.1:9/unused"))


def test_loopback_serves_this_machine_only():
    settings = StatusSettings(access="loopback")
    keys = CertCache("http://127.0.0.1:9/unused")
    assert check_access(settings, "127.0.0.1", {}, keys) == "loopback"
    assert check_access(settings, "::1", {}, keys) == "loopback"
    for outside in ("10.1.2.3", "192.168.1.20", "8.8.8.8", None):
        with pytest.raises(AccessDenied, match="loopback and the request came from"):
            check_access(settings, outside, {}, keys)


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_loopback_refuses_requests_a_local_proxy_forwarded(header):
    with pytest.raises(AccessDenied, match="forwarded"):
        check_access(StatusSettings(access="loopback"), "127.0.0.1", {header.lower(): "203.0.113.7"}, CertCache("x"))


def test_iap_accepts_a_valid_assertion_and_names_the_user(iap):
    assert check_iap(iap, iap.assertion()) == "ops@example.com"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda iap: None, "no X-Goog-IAP-JWT-Assertion header"),
        (lambda iap: "not-a-jwt", "malformed"),
        (lambda iap: iap.assertion(aud="/projects/999/apps/other"), "wrong audience"),
        (lambda iap: iap.assertion(iat=1_700_000_000, exp=1_700_000_600), "expired"),
        (lambda iap: iap.assertion(iss="https://accounts.google.com"), "wrong issuer"),
        (lambda iap: iap.assertion(key_index=1), "signature"),
        (lambda iap: iap.assertion(kid="another-kid"), "unknown key id"),
    ],
)
def test_iap_refuses_assertions_that_do_not_prove_the_proxy(iap, make, reason):
    with pytest.raises(AccessDenied, match=reason):
        check_iap(iap, make(iap))


def test_iap_refuses_an_rs256_token_even_from_a_google_key(iap, token_factory):
    token = token_factory.sign(iss="https://cloud.google.com/iap", aud=AUDIENCE, iat=1, exp=2)
    with pytest.raises(AccessDenied, match="unexpected algorithm 'RS256'"):
        check_iap(iap, token)


def test_iap_keys_that_cannot_be_fetched_are_a_503_not_a_403(iap):
    with pytest.raises(CertsUnavailable, match="cannot fetch signing certificates"):
        check_iap(iap, iap.assertion(), CertCache("http://127.0.0.1:9/iap/verify/public_key", timeout=1))


def test_iap_keys_are_fetched_once_for_many_requests(iap):
    keys = CertCache(iap.keys_url)
    for _ in range(5):
        check_iap(iap, iap.assertion(), keys)
    assert iap.fetches == 1


@pytest.mark.parametrize("path", ["/status", "/status/customer", "/status/nobody"])
def test_the_routes_refuse_with_403_and_log_why(tmp_path, path, caplog):
    app = unverified_app(tmp_path, status={"access": "off"})
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get(path)
    assert response.status_code == 403
    assert "the status page is off" in caplog.text
    assert response.headers["Cache-Control"] == "no-store"


def test_the_routes_refuse_outside_clients_in_loopback_mode(tmp_path):
    client = unverified_app(tmp_path, status={"access": "loopback"}).test_client()
    assert client.get("/status", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 403
    assert client.get("/status", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403


def test_the_routes_refuse_a_forged_iap_assertion(tmp_path, iap):
    status = {"access": "iap", "iap_audience": AUDIENCE, "iap_keys_url": iap.keys_url}
    client = unverified_app(tmp_path, status=status).test_client()
    assert client.get("/status").status_code == 403
    assert client.get("/status", headers={IAP_HEADER: iap.assertion(key_index=1)}).status_code == 403
    assert (
        client.get("/status/customer", headers={IAP_HEADER: iap.assertion(aud="/projects/1/apps/x")}).status_code == 403
    )
