"""``GET /tasks/tick``: a tick for App Engine cron or Cloud Scheduler; ``POST /tasks/changed?team=…``: an
alert check of the named teams now (`bot.alerts.push`), for those and for a CRM workflow signing with
``schedule.changed_secret`` (``X-Scorebot-Timestamp``: Unix seconds; ``X-Scorebot-Signature``: the hex
HMAC-SHA256 of ``TIMESTAMP.QUERY``).

Accepted only from:

- App Engine cron: ``X-Appengine-Cron: true`` while running on App Engine
  (``GAE_ENV`` or ``GAE_APPLICATION`` set; App Engine strips the header from
  outside requests, so it is trusted there only);
- Cloud Scheduler: a Google OIDC token for ``schedule.cron_audience``, issued
  to ``schedule.cron_service_account``.

Anything else gets 403 (and a log line saying why); 503 when Google's
signing certificates cannot be fetched, so the scheduler retries.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping

from flask import Blueprint, Response, jsonify, request

from bot.alerts.push import MAX_TEAMS, verify_signature
from bot.config import GOOGLE_OIDC_CERTS_URL, ScheduleSettings, TeamConfig
from bot.context import Services
from bot.errors import VerificationError
from bot.google_tokens import CertCache, CertsUnavailable, verify_google_oidc
from bot.schedule.tick import Scheduler

log = logging.getLogger(__name__)


def create_tick_blueprint(
    services: Services,
    *,
    scheduler: Scheduler | None = None,
    certs: CertCache | None = None,
    env: Mapping[str, str] | None = None,
) -> Blueprint:
    """The blueprint serving ``GET /tasks/tick`` and ``POST /tasks/changed`` for ``services`` (register it on
    the app)."""
    blueprint = Blueprint("tick", __name__)
    runner = scheduler or Scheduler(services)
    cert_cache = certs or CertCache(GOOGLE_OIDC_CERTS_URL)
    environ = os.environ if env is None else env

    def refusal(route: str, signed_with: str | None = None) -> tuple[Response, int] | None:
        """None if the request is App Engine cron's, Cloud Scheduler's, or signed with ``signed_with``
        (when it carries a signature); else the answer refusing it."""
        try:
            if signed_with and request.headers.get("X-Scorebot-Signature"):
                verify_signature(
                    signed_with,
                    request.headers.get("X-Scorebot-Timestamp"),
                    request.headers.get("X-Scorebot-Signature"),
                    request.query_string.decode("latin-1"),
                    time.time(),
                )
            else:
                check_cron_request(
                    request.headers.get("X-Appengine-Cron"),
                    request.headers.get("Authorization"),
                    services.config.schedule,
                    environ,
                    cert_cache,
                )
        except CertsUnavailable as exc:
            log.error("%s: cannot verify: %s", route, exc)
            return jsonify(error="cannot verify the request now"), 503
        except VerificationError as exc:
            log.warning("%s refused: %s", route, exc)
            return jsonify(error="forbidden"), 403
        return None

    @blueprint.get("/tasks/tick")
    def tick() -> tuple[Response, int]:
        refused = refusal("GET /tasks/tick")
        if refused:
            return refused
        try:
            result = runner.tick()
        except Exception as exc:  # noqa: BLE001 (its text may hold a webhook URL: log the type only)
            log.error("GET /tasks/tick: tick failed: %s", type(exc).__name__)
            return jsonify(error="tick failed"), 500
        log.info("tick at %s: %s", result.now.isoformat(), result.summary())
        outcomes = [
            {"team": o.team_id, "slot": o.slot.isoformat(), "state": o.state, "detail": o.detail}
            for o in result.outcomes
        ]
        return jsonify(now=result.now.isoformat(), summary=result.summary(), outcomes=outcomes), 200

    @blueprint.post("/tasks/changed")
    def changed() -> tuple[Response, int]:
        secret = services.config.schedule.changed_secret
        refused = refusal("POST /tasks/changed", secret.get_secret_value() if secret else None)
        if refused:
            return refused
        named = [name for value in request.args.getlist("team") for name in value.split(",") if name]
        teams, problem = _teams_to_check(services, named)
        if problem:
            return jsonify(error=problem), 400
        runner.pushed.queue(teams)
        return jsonify(queued=[team.id for team in teams]), 202

    return blueprint


def _teams_to_check(services: Services, named: list[str]) -> tuple[list[TeamConfig], str | None]:
    """The teams ``?team=`` names (each once), or why the request is refused."""
    if not named:
        return [], "name the teams to check: ?team=ID (repeated, or comma-separated)"
    if len(set(named)) > MAX_TEAMS:
        return [], f"at most {MAX_TEAMS} teams a request"
    teams = [services.config.team(name) for name in dict.fromkeys(named)]
    unknown = [name for name, team in zip(dict.fromkeys(named), teams, strict=True) if team is None]
    if unknown:
        return [], "unknown teams: " + ", ".join(repr(name[:64]) for name in unknown)
    known = [team for team in teams if team is not None]
    silent = [team.id for team in known if team.alerts is None]
    if silent:
        return [], "teams without alerts: " + ", ".join(silent)
    return known, None


def check_cron_request(
    cron_header: str | None,
    authorization: str | None,
    settings: ScheduleSettings,
    env: Mapping[str, str],
    certs: CertCache,
) -> None:
    """Raise `VerificationError` unless the request is App Engine cron's or carries a valid OIDC token."""
    on_app_engine = bool(env.get("GAE_ENV") or env.get("GAE_APPLICATION"))
    if on_app_engine and cron_header == "true":
        return
    if not authorization:
        where = "" if on_app_engine else " (X-Appengine-Cron is trusted on App Engine only)"
        raise VerificationError(f"neither App Engine cron nor an OIDC token{where}")
    if not (settings.cron_audience and settings.cron_service_account):
        raise VerificationError("an OIDC token was sent but schedule.cron_audience/cron_service_account are not set")
    verify_google_oidc(authorization, settings.cron_audience, settings.cron_service_account, certs)
