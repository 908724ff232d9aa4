"""Chat's Flask adapter: the event route and its request verification, nothing else.

Everything past the HTTP boundary (parsing, routing, handlers, formatting)
is plain Python in `bot.chat.events`, `bot.chat.dispatch` and `handlers/`;
the app around this blueprint is `bot.app`'s.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot.chat.dispatch import Routes, dispatch
from bot.chat.events import parse_event
from bot.chat.replies import DialogReply, body_json, dialog_body, private_viewer
from bot.context import Services
from bot.errors import VerificationError
from bot.google_tokens import CertCache, CertsUnavailable, verify_chat_token

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024


def create_chat_blueprint(services: Services, routes: Routes, certs: CertCache) -> Blueprint:
    """The blueprint serving Chat's events on ``POST /`` and ``POST /chat``, answered through ``routes``.

    ``certs`` must serve the certificates of ``chat.audience_type`` (``chat.effective_certs_url``).
    """
    blueprint = Blueprint("chat", __name__)
    settings = services.config.chat

    @blueprint.post("/")
    @blueprint.post("/chat")
    def chat_event() -> Any:
        if settings.verify:
            try:
                verify_chat_token(request.headers.get("Authorization"), settings, certs)
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
        reply = dispatch(event, services, routes)
        log.info(
            "%s %s event in %s answered in %.0f ms",
            event.format,
            event.kind,
            event.space or "no space",
            (time.monotonic() - started) * 1000,
        )
        if reply is None:
            return jsonify({})
        if isinstance(reply, DialogReply):
            return jsonify(dialog_body(reply, event.format))
        viewer = private_viewer(reply, event, settings.private_replies)
        return Response(body_json(reply, event.format, viewer), mimetype="application/json")

    return blueprint


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status
