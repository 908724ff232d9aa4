"""The Flask adapter: routes, request verification, and nothing else.

Everything past the HTTP boundary (parsing, routing, handlers, formatting)
is plain Python in `bot.chat.events`, `bot.chat.dispatch` and `handlers/`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot.chat.dispatch import dispatch
from bot.chat.events import parse_event
from bot.chat.replies import private_viewer, wrap
from bot.chat.verify import CertCache, CertsUnavailable, verify_chat_token
from bot.config import Config, load_config
from bot.errors import ConfigError, VerificationError
from bot.logs import setup_logging
from bot.pages.charts import create_charts_blueprint
from bot.pages.status import create_status_blueprint
from bot.schedule.route import create_tick_blueprint
from bot.secrets import scrub
from bot.services import Services, build_services

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024


def create_app(
    config: Config | None = None,
    services: Services | None = None,
    *,
    allow_unverified: bool = False,
    certs: CertCache | None = None,
) -> Flask:
    """The Chat app. Refuses ``chat.verify: false`` unless ``allow_unverified`` (loopback `serve`)."""
    if services is None:
        services = build_services(config or load_config())
    config = services.config
    if not config.chat.verify and not allow_unverified:
        raise ConfigError(
            f"{config.path}: chat.verify: false is for local trials only; "
            "run `python -m bot serve` on 127.0.0.1, or set verify: true with an audience"
        )
    certs = certs or CertCache(config.chat.effective_certs_url)
    app = Flask("scorebot")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["scorebot"] = services
    app.register_blueprint(create_tick_blueprint(services))
    app.register_blueprint(create_status_blueprint(services))
    if charts := create_charts_blueprint(services):
        app.register_blueprint(charts)

    app.after_request(hide_secrets)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.post("/")
    @app.post("/chat")
    def chat_event() -> Any:
        if config.chat.verify:
            try:
                verify_chat_token(request.headers.get("Authorization"), config.chat, certs)
            except CertsUnavailable as exc:
                log.error("cannot verify %s request: %s", request.path, exc)
                return _error(503, "cannot verify the request now")
            except VerificationError as exc:
                log.warning("rejected %s request from %s: %s", request.path, request.remote_addr, exc)
                return _error(401, "unauthorized")
        try:
            body = request.get_json(force=True, silent=True)
        except RequestEntityTooLarge:
            log.warning("rejected %s request: body over %d bytes", request.path, MAX_BODY_BYTES)
            return _error(413, "request body too large")
        except RecursionError:
            log.warning("rejected %s request: JSON nested too deeply", request.path)
            return _error(400, "JSON nested too deeply")
        if not isinstance(body, dict):
            log.warning("rejected %s request: body is not a JSON object", request.path)
            return _error(400, "expected a JSON object")
        event = parse_event(body)
        started = time.monotonic()
        reply = dispatch(event, services)
        log.info(
            "%s %s event in %s answered in %.0f ms",
            event.format,
            event.kind,
            event.space or "no space",
            (time.monotonic() - started) * 1000,
        )
        if reply is None:
            return jsonify({})
        return jsonify(wrap(reply, event.format, private_viewer(reply, event, config.chat.private_replies)))

    return app


def create_app_or_exit() -> Flask:
    """The production app (`create_app` from $SCOREBOT_CONFIG), or exit 3 after one line naming the problem.

    The process exits (status 3) instead of serving a broken app.
    """
    setup_logging()
    try:
        return create_app()
    except ConfigError as exc:
        log.critical("cannot start: %s", exc)
        sys.exit(3)


def hide_secrets(response: Response) -> Response:
    """Every reply (cards, the tick's JSON, errors) with the secrets Scorebot knows hidden."""
    if not response.direct_passthrough and response.mimetype in {"application/json", "text/plain", "text/html"}:
        text = response.get_data(as_text=True)
        clean = scrub(text)
        if clean != text:
            response.set_data(clean)
    return response


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status
