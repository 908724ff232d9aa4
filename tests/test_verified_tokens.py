"""A token whose signature held is not checked with RSA again, and nothing else is remembered: each
request still checks every claim against the clock and the settings, and a key that left the set (or
a key id that now names another key) refuses the token as a first sight would.
"""

import re
import time

import pytest

from bot.errors import VerificationError
from bot.google_tokens import CLOCK_SKEW_SECONDS, SIGNED_TOKENS, verify_chat_token
from tests.tokens import bearer, signing_key

PROJECT = "123456789012"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(header: str, settings, certs, reason: str) -> None:
    with pytest.raises(VerificationError, match=re.escape(reason)):
        verify_chat_token(header, settings, certs)


def test_a_token_seen_before_is_refused_once_it_expires(token_factory):
    settings, certs = token_factory.settings("project_number", PROJECT), token_factory.cert_cache()
    expires = time.time() - CLOCK_SKEW_SECONDS + 5.0  # valid for five more seconds, counting the skew
    header = bearer(token_factory.project_number_token(PROJECT, issued_at=expires - 3600))
    assert verify_chat_token(header, settings, certs)["aud"] == PROJECT
    time.sleep(max(0.0, expires + CLOCK_SKEW_SECONDS - time.time()) + 0.2)
    refused(header, settings, certs, "token expired")


def test_every_claim_is_checked_again_on_each_request(token_factory):
    certs = token_factory.cert_cache()
    header = bearer(token_factory.project_number_token(PROJECT))
    verify_chat_token(header, token_factory.settings("project_number", PROJECT), certs)
    refused(header, token_factory.settings("project_number", "999"), certs, "wrong audience")
    refused(header, token_factory.settings("endpoint_url", PROJECT), certs, "wrong issuer")


def test_the_claims_given_out_are_a_copy(token_factory):
    settings, certs = token_factory.settings("project_number", PROJECT), token_factory.cert_cache()
    header = bearer(token_factory.project_number_token(PROJECT))
    verify_chat_token(header, settings, certs)["aud"] = "changed by a caller"
    assert verify_chat_token(header, settings, certs)["aud"] == PROJECT


def test_a_token_whose_key_left_the_set_is_refused(token_factory):
    settings, clock = token_factory.settings("project_number", PROJECT), FakeClock()
    certs = token_factory.cert_cache(clock=clock)
    header = bearer(token_factory.project_number_token(PROJECT))
    verify_chat_token(header, settings, certs)
    token_factory.served = {"test-key-2": signing_key(1)}  # rotated: the old key is no longer published
    clock.now += 3601  # the set's max-age: fetched again
    refused(header, settings, certs, "unknown key id")


def test_a_token_whose_key_id_now_names_another_key_is_refused(token_factory):
    settings, clock = token_factory.settings("project_number", PROJECT), FakeClock()
    certs = token_factory.cert_cache(clock=clock)
    header = bearer(token_factory.project_number_token(PROJECT))
    verify_chat_token(header, settings, certs)
    token_factory.served = {token_factory.kid: signing_key(1)}
    clock.now += 3601
    refused(header, settings, certs, "bad signature")


def test_a_forged_or_altered_token_is_refused_every_time(token_factory):
    settings, certs = token_factory.settings("project_number", PROJECT), token_factory.cert_cache()
    good = token_factory.project_number_token(PROJECT)
    verify_chat_token(bearer(good), settings, certs)
    forged = bearer(token_factory.sign_with_unknown_key(aud=PROJECT, iss="chat@system.gserviceaccount.com",
                                                        iat=int(time.time()), exp=int(time.time()) + 3600))  # fmt: skip
    head, payload, signature = good.split(".")
    altered = bearer(".".join([head, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]))
    for _ in range(2):
        refused(forged, settings, certs, "bad signature")
        refused(altered, settings, certs, "bad signature")


def test_the_remembered_tokens_are_bounded_and_each_still_verifies(token_factory):
    settings, certs = token_factory.settings("project_number", PROJECT), token_factory.cert_cache()
    headers = [bearer(token_factory.project_number_token(PROJECT, nonce=n)) for n in range(SIGNED_TOKENS + 5)]
    for header in headers + headers[:5]:  # the first ones were pushed out: checked in full again
        assert verify_chat_token(header, settings, certs)["aud"] == PROJECT
    assert len(certs._signed) == SIGNED_TOKENS
