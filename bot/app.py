"""Composition: the Flask app, built from the three faces and the handlers.

The app factory sits above Chat (`bot.chat`), the scheduler's route
(`bot.schedule`) and the status pages and charts (`bot.pages`): it registers
each face's blueprint and gives Chat's dispatch the handler table, so no face
imports another and none imports `handlers`.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask, Response

from bot.chat.web import MAX_BODY_BYTES, create_chat_blueprint
from bot.config import Config, load_config
from bot.context import Services
from bot.errors import ConfigError, SchemaError
from bot.google_tokens import CertCache
from bot.logs import setup_logging
from bot.pages.charts import create_charts_blueprint
from bot.pages.status import create_status_blueprint
from bot.schedule.route import create_tick_blueprint
from bot.secrets import scrub
from bot.services import build_services
from handlers import ROUTES

log = logging.getLogger(__name__)


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
    app = Flask("scorebot")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["scorebot"] = services
    app.register_blueprint(create_tick_blueprint(services))
    app.register_blueprint(create_status_blueprint(services))
    if charts := create_charts_blueprint(services):
        app.register_blueprint(charts)
    app.register_blueprint(create_chat_blueprint(services, ROUTES, certs or CertCache(config.chat.effective_certs_url)))
    app.after_request(hide_secrets)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app


def create_app_or_exit() -> Flask:
    """The production app (`create_app` from $SCOREBOT_CONFIG), or exit 3 after one line naming the problem.

    The process exits (status 3) instead of serving a broken app.
    """
    setup_logging()
    try:
        return create_app()
    except (ConfigError, SchemaError) as exc:
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
