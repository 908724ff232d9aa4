"""Request verification: every token kind accepted, every fault named, certificates cached."""

import base64
import json
import re
import time
from types import SimpleNamespace

import pytest

from bot.config import CHAT_ISSUER
from bot.errors import VerificationError
from bot.google_tokens import FAILED_FETCH_PAUSE_SECONDS, CertsUnavailable, verify_chat_token, verify_google_oidc
from tests.tokens import ADDON_SERVICE_ACCOUNT, GOOGLE_ISSUER, bearer, signing_key

PROJECT = "123456789012"
URL = "https://scorebot.example.com/chat"
TICK_URL = "https://scorebot.example.com/tick"
SCHEDULER = "scheduler@scorebot-demo.iam.gserviceaccount.com"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rejection(header, settings, certs, expected: str) -> str:
    """The reason a header is refused (it must contain ``expected``); checks that it is a 401 kind and does not
    leak the token."""
    with pytest.raises(VerificationError, match=re.escape(expected)) as caught:
        verify_chat_token(header, settings, certs)
    assert not isinstance(caught.value, CertsUnavailable)
    reason = str(caught.value)
    token = (header or "").removeprefix("Bearer ")
    for secret in [token, *token.split(".")]:
        assert len(secret) < 8 or secret not in reason
    return reason


def test_project_number_token_accepted(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    claims = verify_chat_token(
        bearer(token_factory.project_number_token(PROJECT)), settings, token_factory.cert_cache()
    )
    assert claims["aud"] == PROJECT
    assert claims["iss"] == CHAT_ISSUER


def test_endpoint_url_token_accepted(token_factory):
    settings = token_factory.settings("endpoint_url", URL)
    claims = verify_chat_token(bearer(token_factory.endpoint_token(URL)), settings, token_factory.cert_cache())
    assert claims["email"] == CHAT_ISSUER
    assert claims["aud"] == URL


def test_addon_token_accepted(token_factory):
    settings = token_factory.settings("addon", URL)
    token = token_factory.addon_token(URL)
    claims = verify_chat_token(bearer(token), settings, token_factory.cert_cache())
    assert claims["email"] == ADDON_SERVICE_ACCOUNT


def test_scheduler_token_accepted_and_pinned_to_its_service_account(token_factory):
    certs = token_factory.cert_cache()
    token = token_factory.oidc_token(TICK_URL, SCHEDULER)
    assert verify_google_oidc(bearer(token), TICK_URL, SCHEDULER, certs)["email"] == SCHEDULER
    with pytest.raises(VerificationError, match="wrong email"):
        verify_google_oidc(
            bearer(token_factory.oidc_token(TICK_URL, "other@x.iam.gserviceaccount.com")), TICK_URL, SCHEDULER, certs
        )
    with pytest.raises(VerificationError, match="wrong audience"):
        verify_google_oidc(bearer(token), URL, SCHEDULER, certs)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing Authorization header"),
        ("", "missing Authorization header"),
        ("Basic dXNlcjpzZWNyZXRwYXNzd29yZA==", "not a Bearer token"),
        ("Bearer", "malformed token: empty"),
        ("Bearer garbage-not-a-jwt", "malformed token"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiIxIn0", "malformed token"),
        ("Bearer aaaa.bbbb.cccc", "malformed token"),
    ],
)
def test_headers_that_are_not_a_token(token_factory, header, reason):
    settings = token_factory.settings("project_number", PROJECT)
    rejection(header, settings, token_factory.cert_cache(), reason)
    assert token_factory.fetches == 0


def test_token_without_key_id_or_with_another_algorithm(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    certs = token_factory.cert_cache()
    no_kid = signing_key(0).sign({"aud": PROJECT, "iss": CHAT_ISSUER}, kid=None)
    rejection(bearer(no_kid), settings, certs, "no key id")

    def segment(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    unsigned = f"{segment({'alg': 'none', 'kid': token_factory.kid})}.{segment({'aud': PROJECT})}.sig"
    rejection(bearer(unsigned), settings, certs, "unsupported algorithm 'none'")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"issued_at": -7200}, "token expired"),
        ({"issued_at": 600}, "issued in the future"),
        ({"key": signing_key(2)}, "bad signature"),
        ({"kid": "not-a-served-key"}, "unknown key id 'not-a-served-key'"),
        ({"issuer": GOOGLE_ISSUER}, "wrong issuer 'https://accounts.google.com'"),
    ],
)
def test_project_number_faults(token_factory, overrides, reason):
    """Each fault is refused with its reason; issue times are offsets from the moment the test runs."""
    if "issued_at" in overrides:
        overrides = {"issued_at": time.time() + overrides["issued_at"]}
    settings = token_factory.settings("project_number", PROJECT)
    token = token_factory.project_number_token(PROJECT, **overrides)
    rejection(bearer(token), settings, token_factory.cert_cache(), reason)


def test_wrong_audience_names_both(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    reason = rejection(
        bearer(token_factory.project_number_token("999")), settings, token_factory.cert_cache(), "wrong audience"
    )
    assert reason == "wrong audience '999' (expected '123456789012')"


def test_project_number_token_sent_to_an_endpoint_url_app(token_factory):
    settings = token_factory.settings("endpoint_url", URL)
    token = bearer(token_factory.project_number_token(PROJECT))
    rejection(token, settings, token_factory.cert_cache(), "wrong audience")


@pytest.mark.parametrize("kind", ["project_number", "endpoint_url", "addon"])
@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"nbf": int(time.time()) + 86400}, "nbf in the future"),
        ({"nbf": "tomorrow"}, "nbf is 'tomorrow', not a number"),
        ({"lifetime": 10 * 365 * 86400}, "token lifetime 315360000 s is longer than the 3600 s Google issues"),
        ({"lifetime": 3600 + 120}, "token lifetime 3720 s is longer"),
    ],
)
def test_tokens_not_yet_valid_or_living_longer_than_google_issues_are_refused(token_factory, kind, overrides, reason):
    audience = PROJECT if kind == "project_number" else URL
    settings = token_factory.settings(kind, audience)
    make = {
        "project_number": token_factory.project_number_token,
        "endpoint_url": token_factory.endpoint_token,
        "addon": token_factory.addon_token,
    }[kind]
    rejection(bearer(make(audience, **overrides)), settings, token_factory.cert_cache(), reason)


@pytest.mark.parametrize("overrides", [{"nbf": int(time.time()) + 20}, {"nbf": int(time.time())}, {"lifetime": 3620}])
def test_nbf_and_lifetime_within_clock_skew_are_accepted(token_factory, overrides):
    settings = token_factory.settings("project_number", PROJECT)
    token = token_factory.project_number_token(PROJECT, **overrides)
    assert verify_chat_token(bearer(token), settings, token_factory.cert_cache())["aud"] == PROJECT


def test_token_without_expiry(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    token = token_factory.sign(aud=PROJECT, iss=CHAT_ISSUER, iat=int(time.time()))
    rejection(bearer(token), settings, token_factory.cert_cache(), "no numeric iat and exp")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"email": "someone@example.com"}, "wrong email 'someone@example.com'"),
        ({"email": None}, "wrong email None"),
        ({"email_verified": False}, "email not verified"),
        ({"email_verified": None}, "email not verified"),
        ({"issuer": CHAT_ISSUER}, "wrong issuer"),
    ],
)
def test_endpoint_url_faults(token_factory, overrides, reason):
    settings = token_factory.settings("endpoint_url", URL)
    token = token_factory.endpoint_token(URL, **overrides)
    rejection(bearer(token), settings, token_factory.cert_cache(), reason)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"email": "service-999999999999@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"}, "wrong email"),
        ({"email": CHAT_ISSUER}, "wrong email"),
        ({"email": ADDON_SERVICE_ACCOUNT.upper()}, "wrong email"),
        ({"email_verified": False}, "email not verified"),
        ({"email_verified": None}, "email not verified (email_verified is None)"),
        ({"issuer": "https://evil.example.com"}, "wrong issuer"),
    ],
)
def test_addon_faults(token_factory, overrides, reason):
    settings = token_factory.settings("addon", URL)
    token = token_factory.addon_token(URL, **overrides)
    rejection(bearer(token), settings, token_factory.cert_cache(), reason)


def test_certificates_are_fetched_once_for_many_requests(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    certs = token_factory.cert_cache()
    for _ in range(10):
        verify_chat_token(bearer(token_factory.project_number_token(PROJECT)), settings, certs)
    assert token_factory.fetches == 1


def test_unknown_key_id_refetches_at_most_once_a_minute(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    clock = FakeClock()
    certs = token_factory.cert_cache(clock=clock)
    verify_chat_token(bearer(token_factory.project_number_token(PROJECT)), settings, certs)
    unknown = bearer(token_factory.project_number_token(PROJECT, kid="rotated-away"))
    for _ in range(5):
        rejection(unknown, settings, certs, "unknown key id")
    assert token_factory.fetches == 1  # the set was fetched just now
    clock.now += 61
    for _ in range(5):
        rejection(unknown, settings, certs, "unknown key id")
    assert token_factory.fetches == 2


def test_a_rotated_in_key_is_picked_up(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    clock = FakeClock()
    certs = token_factory.cert_cache(clock=clock)
    verify_chat_token(bearer(token_factory.project_number_token(PROJECT)), settings, certs)
    token_factory.add_key("test-key-2", index=1)
    clock.now += 120
    for _ in range(3):
        verify_chat_token(bearer(token_factory.project_number_token(PROJECT, kid="test-key-2")), settings, certs)
    assert token_factory.fetches == 2


@pytest.mark.parametrize(("max_age", "lifetime"), [(10, 10), (None, 3600)])
def test_cache_follows_max_age(token_factory, max_age, lifetime):
    token_factory.max_age = max_age
    settings = token_factory.settings("project_number", PROJECT)
    clock = FakeClock()
    certs = token_factory.cert_cache(clock=clock)
    header = bearer(token_factory.project_number_token(PROJECT))
    verify_chat_token(header, settings, certs)
    clock.now += lifetime - 1
    verify_chat_token(header, settings, certs)
    assert token_factory.fetches == 1
    clock.now += 2
    verify_chat_token(header, settings, certs)
    assert token_factory.fetches == 2


def test_certificate_server_error_is_certs_unavailable(token_factory):
    token_factory.fail_with = 500
    settings = token_factory.settings("project_number", PROJECT)
    with pytest.raises(CertsUnavailable, match="answered HTTP 500"):
        verify_chat_token(bearer(token_factory.project_number_token(PROJECT)), settings, token_factory.cert_cache())


def test_unreachable_certificate_server_is_certs_unavailable(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    header = bearer(token_factory.project_number_token(PROJECT))
    certs = token_factory.cert_cache()
    token_factory.close()
    with pytest.raises(CertsUnavailable, match="cannot fetch signing certificates"):
        verify_chat_token(header, settings, certs)


def test_failed_refetch_keeps_the_certificates_already_known(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    clock = FakeClock()
    certs = token_factory.cert_cache(clock=clock)
    known = bearer(token_factory.project_number_token(PROJECT))
    verify_chat_token(known, settings, certs)
    token_factory.fail_with = 503
    clock.now += 61
    with pytest.raises(CertsUnavailable, match=r"^signing certificates at \S+/certs answered HTTP 503"):
        verify_chat_token(bearer(token_factory.project_number_token(PROJECT, kid="new")), settings, certs)
    assert verify_chat_token(known, settings, certs)["aud"] == PROJECT


def test_expired_certificates_are_kept_while_the_endpoint_fails_and_retried_once_a_minute(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    clock = FakeClock()
    token_factory.max_age = 10
    certs = token_factory.cert_cache(clock=clock)
    known = bearer(token_factory.project_number_token(PROJECT))
    verify_chat_token(known, settings, certs)
    token_factory.fail_with = 503
    clock.now += 11  # the set has expired, and the endpoint fails
    fetched = token_factory.fetches
    for _ in range(5):
        assert verify_chat_token(known, settings, certs)["aud"] == PROJECT
    assert token_factory.fetches == fetched + 1, "one failed refetch, not one per request"
    token_factory.fail_with = None
    clock.now += 61
    verify_chat_token(known, settings, certs)
    assert token_factory.fetches == fetched + 2


def test_a_failed_fetch_is_remembered_for_a_few_seconds(token_factory):
    token_factory.fail_with = 503
    settings = token_factory.settings("project_number", PROJECT)
    clock = FakeClock()
    certs = token_factory.cert_cache(clock=clock)
    header = bearer(token_factory.project_number_token(PROJECT))
    for _ in range(5):
        with pytest.raises(CertsUnavailable, match="answered HTTP 503"):
            verify_chat_token(header, settings, certs)
    assert token_factory.fetches == 1, "one fetch, then its failure is the answer"
    token_factory.fail_with = None
    clock.now += FAILED_FETCH_PAUSE_SECONDS + 0.5
    assert verify_chat_token(header, settings, certs)["aud"] == PROJECT
    assert token_factory.fetches == 2


def test_signing_keys_are_parsed_once_per_fetched_set_not_per_request(token_factory):
    settings = token_factory.settings("project_number", PROJECT)
    certs = token_factory.cert_cache()
    parsed = certs.verifier(token_factory.kid)
    assert parsed is not None
    for _ in range(3):
        claims = verify_chat_token(bearer(token_factory.project_number_token(PROJECT)), settings, certs)
        assert claims["aud"] == PROJECT
    assert certs.verifier(token_factory.kid) is parsed, "the same parsed key serves every request"
    assert token_factory.fetches == 1


def test_a_certificate_that_cannot_be_read_rejects_its_tokens(token_factory):
    token_factory.served["broken"] = SimpleNamespace(cert_pem="-----BEGIN CERTIFICATE-----\nnot one\n")
    settings = token_factory.settings("project_number", PROJECT)
    now = int(time.time())
    claims = {"iss": CHAT_ISSUER, "aud": PROJECT, "iat": now, "exp": now + 3600}
    token = token_factory.sign_claims(claims, kid="broken", key=signing_key(0))
    with pytest.raises(VerificationError, match="signing certificate for key id 'broken' cannot be read"):
        verify_chat_token(bearer(token), settings, token_factory.cert_cache())
