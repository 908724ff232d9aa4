"""Signed test tokens, checked by the same code as production.

A `TokenFactory` owns locally generated RSA keys, serves their self-signed
certificates as ``{kid: PEM certificate}`` (the shape of Google's certificate
URLs) from a loopback HTTP server, and signs JWTs with them. Point
``chat.certs_url`` (or a `CertCache`) at ``factory.certs_url`` and
`bot.google_tokens` checks the tokens exactly as it checks Google's.
"""

from __future__ import annotations

import datetime
import functools
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from bot.config import CHAT_ISSUER, ChatSettings
from bot.google_tokens import CertCache
from tests.fakes.loopback import LoopbackServer

GOOGLE_ISSUER = "https://accounts.google.com"
ADDON_SERVICE_ACCOUNT = "service-123456789012@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"


class SigningKey:
    """An RSA key and a self-signed certificate for it."""

    def __init__(self, name: str) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def sign(self, claims: dict[str, Any], kid: str | None) -> str:
        """A compact RS256 JWT of ``claims`` with ``kid`` in its header."""
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=kid)
        return jwt.encode(signer, claims).decode()


@functools.cache
def signing_key(index: int) -> SigningKey:
    """The ``index``-th test key, generated once per test run (RSA generation is slow)."""
    return SigningKey(f"scorebot test key {index}")


class TokenFactory:
    """Keys served at ``certs_url`` on 127.0.0.1, and tokens signed with them.

    ``fetches`` counts requests to the certificate URL; set ``max_age`` (or
    None for no Cache-Control header), ``fail_with`` (an HTTP status) or
    ``hang`` (no answer until `close`) to shape the next answers.
    """

    def __init__(self) -> None:
        self.kid = "test-key-1"
        self.served: dict[str, SigningKey] = {self.kid: signing_key(0)}
        self.fetches = 0
        self.max_age: int | None = 3600
        self.fail_with: int | None = None
        self.hang = False
        self._server = LoopbackServer(_handler(self), self)
        self.certs_url = f"{self._server.base_url}/certs"

    def close(self) -> None:
        """Stop the certificate server."""
        self._server.close()

    def add_key(self, kid: str, index: int = 1) -> None:
        """Serve test key ``index`` under ``kid`` too (a key rotation)."""
        self.served[kid] = signing_key(index)

    def cert_cache(self, **options: Any) -> CertCache:
        """A fresh `CertCache` on this factory's URL."""
        return CertCache(self.certs_url, **options)

    def settings(
        self,
        audience_type: Literal["project_number", "endpoint_url", "addon"] = "project_number",
        audience: str = "123456789012",
        **more: Any,
    ) -> ChatSettings:
        """`ChatSettings` that check tokens against this factory's keys."""
        if audience_type == "addon":
            more.setdefault("addon_service_account", ADDON_SERVICE_ACCOUNT)
        return ChatSettings(audience_type=audience_type, audience=audience, certs_url=self.certs_url, **more)

    def sign(self, **claims: Any) -> str:
        """``claims`` signed as they are by the first served key, under its kid."""
        return self.sign_claims(claims)

    def sign_with_unknown_key(self, **claims: Any) -> str:
        """``claims`` signed by a key whose certificate is not served, under a served kid (a forgery)."""
        return self.sign_claims(claims, key=signing_key(2))

    def sign_claims(self, claims: dict[str, Any], *, kid: str | None = None, key: SigningKey | None = None) -> str:
        """Sign ``claims``; ``kid`` defaults to the first served key's, ``key`` to the one served under ``kid``."""
        kid = self.kid if kid is None else kid
        key = key or self.served.get(kid) or signing_key(0)
        return key.sign(claims, kid)

    def chat_token(
        self,
        audience: str,
        *,
        issuer: str = CHAT_ISSUER,
        email: str | None = None,
        email_verified: bool | None = None,
        issued_at: float | None = None,
        lifetime: float = 3600,
        kid: str | None = None,
        key: SigningKey | None = None,
        **extra: Any,
    ) -> str:
        """A token as Google sends it: ``iat`` now (or ``issued_at``), ``exp`` after ``lifetime`` seconds."""
        iat = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, Any] = {"aud": audience, "iss": issuer, "iat": iat, "exp": int(iat + lifetime), **extra}
        if email is not None:
            claims["email"] = email
        if email_verified is not None:
            claims["email_verified"] = email_verified
        return self.sign_claims(claims, kid=kid, key=key)

    def project_number_token(self, audience: str, **overrides: Any) -> str:
        """What Chat sends with audience type "project number"."""
        return self.chat_token(audience, **overrides)

    def endpoint_token(self, audience: str, **overrides: Any) -> str:
        """What Chat sends with audience type "HTTP endpoint URL"."""
        defaults = {"issuer": GOOGLE_ISSUER, "email": CHAT_ISSUER, "email_verified": True}
        return self.chat_token(audience, **{**defaults, **overrides})

    def addon_token(self, audience: str, email: str = ADDON_SERVICE_ACCOUNT, **overrides: Any) -> str:
        """What Chat sends to an app built as a Workspace add-on."""
        defaults = {"issuer": GOOGLE_ISSUER, "email": email, "email_verified": True}
        return self.chat_token(audience, **{**defaults, **overrides})

    def oidc_token(self, audience: str, email: str, **overrides: Any) -> str:
        """A Google OIDC ID token for a service account, as Cloud Scheduler sends."""
        return self.chat_token(
            audience, **{"issuer": GOOGLE_ISSUER, "email": email, "email_verified": True, **overrides}
        )


def bearer(token: str) -> str:
    """The Authorization header value for ``token``."""
    return f"Bearer {token}"


def _handler(factory: TokenFactory) -> type[BaseHTTPRequestHandler]:
    class CertsHandler(BaseHTTPRequestHandler):
        server: LoopbackServer[TokenFactory]

        def do_GET(self) -> None:
            factory.fetches += 1
            if factory.hang:
                self.server.stopping.wait(timeout=60)
                return
            status = 404 if self.path != "/certs" else factory.fail_with
            if status:
                self.send_response(status)
                self.end_headers()
                return
            body = json.dumps({kid: key.cert_pem for kid, key in factory.served.items()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            if factory.max_age is not None:
                self.send_header("Cache-Control", f"public, max-age={factory.max_age}, must-revalidate")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return CertsHandler
