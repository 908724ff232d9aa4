"""Time claims that are not Unix times, refused by every verifier with a clean 401/403 and a log line.

Tokens are signed by the test's own keys (tests/tokens.py, tests/iap.py) and
go through the routes: Chat's ``POST /``, ``GET /tasks/tick`` with Cloud
Scheduler's OIDC token, and the status page behind IAP. google-auth decodes
a token's JSON with Python's json module, which reads the literals ``NaN``,
``Infinity`` and ``-Infinity`` (what ``json.dumps`` writes for such floats,
and what the test tokens carry), and ``1e400`` as Infinity.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time

import pytest
import yaml
from flask import Flask
from google.auth import crypt, jwt

from bot.app import create_app
from bot.config import CHAT_ISSUER, load_config
from bot.schedule.route import create_tick_blueprint
from bot.services import build_services
from tests.iap import AUDIENCE as IAP_AUDIENCE
from tests.iap import IapKeys
from tests.pages import pages_config
from tests.test_web import make_config
from tests.tokens import GOOGLE_ISSUER, bearer, signing_key

PROJECT = "123456789012"
TICK_AUDIENCE = "https://scorebot.example.com/tasks/tick"
SCHEDULER = "cron@scorebot-test.iam.gserviceaccount.com"

BAD_TIMES = [
    pytest.param(math.nan, id="NaN"),
    pytest.param(math.inf, id="Infinity"),
    pytest.param(-math.inf, id="-Infinity"),
    pytest.param("1767225600", id="string"),
    pytest.param(10**30, id="huge-int"),
    pytest.param(1e300, id="huge-float"),
    pytest.param(-1, id="negative"),
    pytest.param(True, id="boolean"),
]
CLAIMS = ["exp", "iat", "nbf"]


def claims_with(claim: str, value: object, **base: object) -> dict[str, object]:
    """Valid claims for now (an hour's life), with ``claim`` set to ``value``."""
    now = int(time.time())
    return {**base, "iat": now, "exp": now + 3600, claim: value}


def assert_refused(response, status: int, claim: str, caplog) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and set(response.json) == {"error"}
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{claim} is " in message for message in refusals), refusals


@pytest.fixture
def chat_client(tmp_path, token_factory):
    config = make_config(tmp_path, audience=PROJECT, certs_url=token_factory.certs_url)
    return create_app(services=build_services(config, store_url=f"sqlite:///{tmp_path / 'store.db'}")).test_client()


@pytest.fixture
def tick_client(tmp_path, token_factory):
    make_config(tmp_path, audience=PROJECT)
    path = tmp_path / "demo.yaml"
    data = yaml.safe_load(path.read_text())
    data["schedule"] = {**data.get("schedule", {}), "cron_audience": TICK_AUDIENCE, "cron_service_account": SCHEDULER}
    path.write_text(yaml.safe_dump(data))
    services = build_services(load_config(path), store_url=f"sqlite:///{tmp_path / 'store.db'}")
    app = Flask(__name__)
    app.register_blueprint(create_tick_blueprint(services, certs=token_factory.cert_cache(), env={}))
    return app.test_client()


@pytest.fixture
def iap():
    keys = IapKeys()
    yield keys
    keys.close()


@pytest.fixture
def status_client(tmp_path, iap):
    status = {"access": "iap", "iap_audience": IAP_AUDIENCE, "iap_keys_url": iap.keys_url}
    services = build_services(pages_config(tmp_path, status=status), store_url=f"sqlite:///{tmp_path / 'store.db'}")
    return create_app(services=services, allow_unverified=True).test_client()


def signed_json(payload: str) -> str:
    """A JWT whose payload is ``payload`` byte for byte, signed by the first test key under its kid."""
    header = json.dumps({"alg": "RS256", "typ": "JWT", "kid": "test-key-1"})
    signing_input = ".".join(
        base64.urlsafe_b64encode(part.encode()).rstrip(b"=").decode() for part in (header, payload)
    )
    signature = crypt.RSASigner.from_string(signing_key(0).private_pem).sign(signing_input.encode())
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("literal", "read_as"),
    [
        ("NaN", math.isnan),
        ("Infinity", lambda x: x == math.inf),
        ("-Infinity", lambda x: x == -math.inf),
        ("1e400", lambda x: x == math.inf),
    ],
)
def test_google_auth_reads_the_literals_json_does_not_allow_and_chat_refuses_them(
    chat_client, literal, read_as, caplog
):
    now = int(time.time())
    payload = f'{{"aud": "{PROJECT}", "iss": "{CHAT_ISSUER}", "iat": {now}, "exp": {literal}}}'
    token = signed_json(payload)
    assert read_as(jwt.decode(token, verify=False)["exp"])  # the token library parses the literal as a float
    with caplog.at_level(logging.WARNING):
        response = chat_client.post("/", json={"type": "MESSAGE"}, headers={"Authorization": bearer(token)})
    assert_refused(response, 401, "exp", caplog)


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("value", BAD_TIMES)
def test_chat_requests_refuse_a_time_claim_that_is_not_a_unix_time(chat_client, token_factory, caplog, claim, value):
    token = token_factory.sign_claims(claims_with(claim, value, aud=PROJECT, iss=CHAT_ISSUER))
    with caplog.at_level(logging.WARNING):
        response = chat_client.post("/", json={"type": "MESSAGE"}, headers={"Authorization": bearer(token)})
    assert_refused(response, 401, claim, caplog)


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("value", BAD_TIMES)
def test_the_tick_refuses_an_oidc_time_claim_that_is_not_a_unix_time(tick_client, token_factory, caplog, claim, value):
    claims = claims_with(claim, value, aud=TICK_AUDIENCE, iss=GOOGLE_ISSUER, email=SCHEDULER, email_verified=True)
    token = token_factory.sign_claims(claims)
    with caplog.at_level(logging.WARNING):
        response = tick_client.get("/tasks/tick", headers={"Authorization": bearer(token)})
    assert_refused(response, 403, claim, caplog)


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("value", BAD_TIMES)
def test_the_status_page_refuses_an_iap_time_claim_that_is_not_a_unix_time(status_client, iap, caplog, claim, value):
    with caplog.at_level(logging.WARNING):
        response = status_client.get("/status", headers={"X-Goog-IAP-JWT-Assertion": iap.assertion(**{claim: value})})
    assert response.status_code == 403
    assert "text/html" in response.content_type
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{claim} is " in message for message in refusals), refusals


def test_each_verifier_accepts_sound_times(chat_client, tick_client, status_client, token_factory, iap):
    chat = token_factory.sign_claims(claims_with("nbf", int(time.time()), aud=PROJECT, iss=CHAT_ISSUER))
    assert chat_client.post("/", json={"type": "MESSAGE"}, headers={"Authorization": bearer(chat)}).status_code == 200
    oidc = claims_with("nbf", int(time.time()), aud=TICK_AUDIENCE, iss=GOOGLE_ISSUER, email=SCHEDULER)
    headers = {"Authorization": bearer(token_factory.sign_claims({**oidc, "email_verified": True}))}
    assert tick_client.get("/tasks/tick", headers=headers).status_code == 200
    assertion = iap.assertion(nbf=int(time.time()))
    assert status_client.get("/status", headers={"X-Goog-IAP-JWT-Assertion": assertion}).status_code == 200
