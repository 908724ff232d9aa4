"""Identity-Aware Proxy assertions signed by a key made here, its public key served on 127.0.0.1.

IAP publishes its keys as ``{kid: PEM public key}`` and signs with ES256;
`IapKeys` does the same, so `bot.pages.access` checks these assertions by the
production code path (``status.iap_keys_url`` pointed at ``keys_url``).
"""

from __future__ import annotations

import functools
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt

from bot.google_tokens import IAP_ISSUER
from tests.fakes.loopback import LoopbackServer

AUDIENCE = "/projects/123456789012/apps/scorebot-test"


@functools.cache
def ec_key(index: int) -> tuple[str, str]:
    """The ``index``-th P-256 test key: (private PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class IapKeys:
    """A loopback stand-in for IAP's key URL, and assertions signed with the key it serves."""

    def __init__(self) -> None:
        self.kid = "iap-test-key"
        self.fetches = 0
        self._server = LoopbackServer(_handler(self), self)
        self.keys_url = f"{self._server.base_url}/iap/verify/public_key"

    def close(self) -> None:
        """Stop serving."""
        self._server.close()

    def assertion(self, *, key_index: int = 0, kid: str | None = None, **overrides: Any) -> str:
        """An ES256 assertion as IAP sends it (valid for ten minutes), with ``overrides`` applied to its claims."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": IAP_ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "sub": "accounts.google.com:1234",
            "email": "ops@example.com",
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        signer = crypt.ES256Signer.from_string(ec_key(key_index)[0], key_id=kid or self.kid)
        return jwt.encode(signer, claims).decode()


def _handler(keys: IapKeys) -> type[BaseHTTPRequestHandler]:
    class KeysHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.fetches += 1
            body = json.dumps({keys.kid: ec_key(0)[1]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return KeysHandler
