"""The Chat app through Flask's test client, with tokens signed by a key the test made.

Every request below carries a token verified by the production code path
(bot/google_tokens.py) against certificates served on 127.0.0.1.
"""

import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from bot.app import create_app
from bot.config import CHAT_ISSUER, DEMO_CONFIG, load_config
from bot.errors import ConfigError
from bot.google_tokens import CertCache
from bot.services import build_services
from tests import payloads as p
from tests.chat_schema import validate_addon_response, validate_message

PROJECT_NUMBER = "123456789012"
ENDPOINT = "https://scorebot.example.com/chat"
ADDON_ACCOUNT = f"service-{PROJECT_NUMBER}@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"


def make_config(tmp_path, **chat):
    for name in ("demo.yaml", "demo-issues.csv"):
        shutil.copy(DEMO_CONFIG.parent / name, tmp_path / name)
    data = yaml.safe_load((tmp_path / "demo.yaml").read_text())
    data["chat"] = {"verify": True, "score_command_id": 1, **chat}
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(data))
    return load_config(tmp_path / "demo.yaml")


@pytest.fixture
def chat_app(tmp_path, token_factory):
    config = make_config(tmp_path, audience=PROJECT_NUMBER, certs_url=token_factory.certs_url)
    return create_app(services=build_services(config, store_url="sqlite:///store.db"))


@pytest.fixture
def client(chat_app):
    return chat_app.test_client()


@pytest.fixture
def auth(token_factory):
    now = int(time.time())
    token = token_factory.sign(iss=CHAT_ISSUER, aud=PROJECT_NUMBER, iat=now, exp=now + 3600)
    return {"Authorization": f"Bearer {token}"}


def post(client, body, auth):
    return client.post("/", data=json.dumps(body), headers=auth, content_type="application/json")


def card_of(body):
    """The message of a reply in either format, checked against the Chat API schema."""
    if "hostAppDataAction" in body:
        assert validate_addon_response(body) == []
        action = body["hostAppDataAction"]["chatDataAction"]
        return next(iter(action)), next(iter(action.values()))["message"]
    assert validate_message(body) == []
    return body["actionResponse"]["type"], body


def titles(message):
    return [c["card"]["header"]["title"] for c in message["cardsV2"]]


SCORE_CASES = [
    (p.classic_slash(), "NEW_MESSAGE", "Customer Issues"),
    (p.classic_slash(" security"), "NEW_MESSAGE", "Security"),
    (p.classic_app_command(" performance"), "NEW_MESSAGE", "Performance"),
    (p.classic_mention(" score"), "NEW_MESSAGE", "Customer Issues"),
    (p.addon_slash(), "createMessageAction", "Customer Issues"),
    (p.addon_slash(" Security"), "createMessageAction", "Security"),
    (p.addon_app_command(" performance"), "createMessageAction", "Performance"),
    (p.addon_mention(" what is the score"), "createMessageAction", "Customer Issues"),
    (p.classic_mention(" what's the Score?"), "NEW_MESSAGE", "Customer Issues"),
    (p.addon_mention(" Score!"), "createMessageAction", "Customer Issues"),
    (p.classic_mention(" show the score for security, please"), "NEW_MESSAGE", "Security"),
    (p.addon_mention(" score of the performance team"), "createMessageAction", "Performance"),
]


@pytest.mark.parametrize(("body", "action", "title"), SCORE_CASES)
def test_score_answers_with_the_team_card(client, auth, body, action, title):
    response = post(client, body, auth)
    assert response.status_code == 200
    kind, message = card_of(response.get_json())
    assert kind == action
    assert titles(message)[0].endswith(title)
    buttons = message["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"]
    assert buttons[0]["text"] == "Refresh"
    params = {x["key"]: x["value"] for x in buttons[0]["onClick"]["action"]["parameters"]}
    assert params["action"] == "refresh"
    assert titles(message)[0].endswith(title)


@pytest.mark.parametrize(
    ("body", "note"),
    [
        (p.classic_slash(" help"), None),
        (p.addon_slash(" help"), None),
        (p.classic_slash(" nosuchteam"), "There is no team called “nosuchteam”."),
        (p.addon_app_command(" nosuchteam"), "There is no team called “nosuchteam”."),
        (p.classic_slash(command_id="9"), None),
        (p.classic_mention(" hello"), None),
        (p.addon_mention(" hello"), None),
    ],
)
def test_help_and_unknown_teams_answer_the_help_card(client, auth, body, note):
    _, message = card_of(post(client, body, auth).get_json())
    assert titles(message) == ["Scorebot"]
    teams_text = message["cardsV2"][0]["card"]["sections"][1]["widgets"][0]["textParagraph"]["text"]
    assert all(team in teams_text for team in ("customer", "performance", "security"))
    if note:
        assert note in json.dumps(message, ensure_ascii=False)


def reply_size(response) -> int:
    """The reply's size as Chat counts it: UTF-8 JSON (fails on a lone surrogate, which UTF-8 cannot carry)."""
    return len(json.dumps(response.get_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


@pytest.mark.parametrize("make", [p.classic_slash, p.addon_slash, p.addon_app_command])
def test_a_huge_unknown_team_name_is_cut_and_made_valid_utf8(client, auth, make):
    word = "\ud800" + "x" * 100_000 + "\udfff"
    response = post(client, make(" " + word), auth)
    assert response.status_code == 200
    assert reply_size(response) <= 32_000
    _, message = card_of(response.get_json())
    note = message["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]["text"]
    assert note.startswith("There is no team called “\ufffdxxx")
    assert note.endswith("x…”.")
    assert len(note) < 100


def test_help_for_two_hundred_long_team_names_fits_chat(tmp_path, token_factory, auth):
    config = make_config(tmp_path, audience=PROJECT_NUMBER, certs_url=token_factory.certs_url)
    data = yaml.safe_load(config.path.read_text())
    template = data["teams"][1]
    data["teams"] = [
        {**template, "id": f"team-{n:03d}-" + "x" * 30, "name": f"Team {n:03d} " + "n" * 70, "spaces": []}
        for n in range(200)
    ]
    config.path.write_text(yaml.safe_dump(data))
    client = create_app(services=build_services(load_config(config.path), store_url="sqlite:///s.db")).test_client()
    for body in (p.classic_slash(" help"), p.addon_slash(" help"), p.classic_slash(" nosuchteam")):
        response = post(client, body, auth)
        assert reply_size(response) <= 32_000
        _, message = card_of(response.get_json())
        teams = message["cardsV2"][0]["card"]["sections"][1]["widgets"][-1]["textParagraph"]["text"]
        assert f"team-000-{'x' * 30}" in teams
        assert teams.endswith(" more teams")


def test_score_in_an_unlinked_space_asks_for_a_team(client, auth):
    other = {"name": "spaces/ELSEWHERE", "spaceType": "SPACE"}
    _, message = card_of(post(client, p.classic_slash(space=other), auth).get_json())
    assert "not linked to a team" in message["text"]


@pytest.mark.parametrize(
    ("body", "action"),
    [(p.classic_click("security"), "UPDATE_MESSAGE"), (p.addon_click("security"), "updateMessageAction")],
)
def test_refresh_updates_the_card_in_place_with_fresh_data(client, auth, chat_app, body, action):
    post(client, p.classic_slash(" security"), auth)
    response = post(client, body, auth)
    kind, message = card_of(response.get_json())
    assert kind == action
    assert titles(message)[0].endswith("Security")
    services = chat_app.extensions["scorebot"]
    origins = [r.origin for r in services.store.recent_readings("security")]
    assert origins == ["refresh", "refresh", "score", "score"], "the click re-read the data (both KPIs)"


@pytest.mark.parametrize(
    ("body", "action"),
    [(p.classic_added(), "NEW_MESSAGE"), (p.addon_added(interaction_add=True), "createMessageAction")],
)
def test_added_to_a_space_welcomes_and_names_the_team(client, auth, body, action):
    kind, message = card_of(post(client, body, auth).get_json())
    assert kind == action
    assert "Customer Issues" in json.dumps(message)


def test_addon_add_by_mention_is_welcomed_once(client, auth):
    response = post(client, p.addon_mention("", adding=True), auth)
    assert response.status_code == 200
    assert response.get_json() == {}


@pytest.mark.parametrize("body", [p.classic_removed(), p.addon_removed()])
def test_removed_answers_200_with_an_empty_json_object(client, auth, body):
    response = post(client, body, auth)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {}


@pytest.mark.parametrize("body", [p.classic_other(), p.addon_other(), {"chat": {}}, {}])
def test_unknown_events_answer_200_and_are_logged(client, auth, body, caplog):
    with caplog.at_level(logging.INFO, logger="bot.chat.dispatch"):
        response = post(client, body, auth)
    assert response.status_code == 200
    assert response.get_json() == {}
    assert "ignored event" in caplog.text


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b"", 400),
        (b'"text"', 400),
        (b"{" + b" " * (1024 * 1024) + b"}", 413),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, 400),
    ],
)
def test_bad_bodies_are_4xx_never_500(client, auth, data, status):
    response = client.post("/chat", data=data, headers=auth, content_type="application/json")
    assert response.status_code == status


def test_healthz(client):
    assert client.get("/healthz").status_code == 200


def claims_now(**extra):
    now = int(time.time())
    return {"iss": CHAT_ISSUER, "aud": PROJECT_NUMBER, "iat": now, "exp": now + 3600, **extra}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer not.a.jwt",
        "Bearer abc",
    ],
)
def test_missing_or_malformed_tokens_are_401(client, header, caplog):
    headers = {} if header is None else {"Authorization": header}
    with caplog.at_level(logging.WARNING):
        response = post(client, p.classic_slash(), headers)
    assert response.status_code == 401
    assert "rejected / request" in caplog.text


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        {"aud": "999999999999"},
        {"iss": "https://accounts.google.com"},
        {"iss": "someone@example.iam.gserviceaccount.com"},
    ],
)
def test_expired_wrong_audience_or_issuer_is_401(client, token_factory, claims, caplog):
    token = token_factory.sign(**claims_now(**claims))
    with caplog.at_level(logging.WARNING):
        response = post(client, p.classic_slash(), {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert token not in caplog.text


def test_a_token_signed_by_another_key_is_401(client, token_factory):
    token = token_factory.sign_with_unknown_key(**claims_now())
    assert post(client, p.classic_slash(), {"Authorization": f"Bearer {token}"}).status_code == 401


def test_no_handler_runs_for_a_rejected_request(client, chat_app):
    post(client, p.classic_slash(" security"), {})
    assert chat_app.extensions["scorebot"].store.recent_readings("security") == []


@pytest.mark.parametrize("mode", ["endpoint_url", "addon"])
def test_url_and_addon_audiences(tmp_path, token_factory, mode):
    chat = {"audience_type": mode, "audience": ENDPOINT, "certs_url": token_factory.certs_url}
    email = ADDON_ACCOUNT if mode == "addon" else CHAT_ISSUER
    if mode == "addon":
        chat["addon_service_account"] = ADDON_ACCOUNT
    client = create_app(
        services=build_services(make_config(tmp_path, **chat), store_url="sqlite:///s.db")
    ).test_client()
    now = int(time.time())
    good = dict(
        iss="https://accounts.google.com", aud=ENDPOINT, email=email, email_verified=True, iat=now, exp=now + 3600
    )
    body = p.addon_slash() if mode == "addon" else p.classic_slash()
    ok = post(client, body, {"Authorization": "Bearer " + token_factory.sign(**good)})
    assert ok.status_code == 200
    if mode == "addon":
        message = ok.get_json()["hostAppDataAction"]["chatDataAction"]["createMessageAction"]["message"]
        refresh = message["cardsV2"][0]["card"]["sections"][-1]["widgets"][0]["buttonList"]["buttons"][0]
        assert refresh["onClick"]["action"]["function"] == ENDPOINT, "add-on buttons must name the endpoint URL"
    other = "service-1@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
    wrong = post(client, body, {"Authorization": "Bearer " + token_factory.sign(**{**good, "email": other})})
    assert wrong.status_code == 401
    wrong_aud = post(client, body, {"Authorization": "Bearer " + token_factory.sign(**{**good, "aud": PROJECT_NUMBER})})
    assert wrong_aud.status_code == 401


def test_a_hanging_certificate_endpoint_answers_every_request_503_within_the_fetch_timeout(tmp_path, token_factory):
    """A cold instance, Google's certificate URL hanging: 8 requests at once share one fetch and its timeout."""
    token_factory.hang = True
    config = make_config(tmp_path, audience=PROJECT_NUMBER, certs_url=token_factory.certs_url)
    certs = CertCache(token_factory.certs_url, timeout=1.0)
    app = create_app(services=build_services(config, store_url="sqlite:///store.db"), certs=certs)
    header = {"Authorization": "Bearer " + token_factory.project_number_token(PROJECT_NUMBER)}
    started = time.monotonic()

    def request(_: int) -> tuple[int, float]:
        response = post(app.test_client(), p.classic_slash(), header)
        return response.status_code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(request, range(8)))
    assert [status for status, _ in answers] == [503] * 8
    assert max(elapsed for _, elapsed in answers) < 2.5, answers
    assert token_factory.fetches == 1
    # The failure is remembered: the next request is answered at once, without another fetch.
    assert request(0)[0] == 503
    assert token_factory.fetches == 1


def test_the_production_app_refuses_verify_false(tmp_path):
    config = make_config(tmp_path, verify=False)
    with pytest.raises(ConfigError, match="verify: false is for local trials only"):
        create_app(services=build_services(config, store_url="sqlite:///s.db"))
