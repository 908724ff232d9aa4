"""Who may see the status page (``status.access``).

- ``off`` (the default): nobody.
- ``loopback``: requests from this machine only (127.0.0.0/8, ::1), and none
  that a local proxy forwarded for someone else (``X-Forwarded-For``,
  ``Forwarded`` or ``X-Real-IP`` present).
- ``iap``: requests that passed Google's Identity-Aware Proxy, proved by the
  ``X-Goog-IAP-JWT-Assertion`` header: an ES256 JWT signed with one of IAP's
  keys (``status.iap_keys_url``, ``{kid: PEM public key}``), for
  ``status.iap_audience``, issued by ``https://cloud.google.com/iap``. The
  signature, ``iat``/``exp`` and audience are checked by google-auth.

`check_access` returns who is looking, or raises `AccessDenied` (answer 403)
or `CertsUnavailable` (answer 503: IAP's keys could not be fetched).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.auth import exceptions as google_exceptions
from google.auth import jwt

from bot.chat.verify import CLOCK_SKEW_SECONDS, CertCache
from bot.config import StatusSettings, is_loopback
from bot.errors import VerificationError

IAP_HEADER = "X-Goog-IAP-JWT-Assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")

# google.auth.jwt is not annotated: give the two functions used here their types.
_jwt_decode: Callable[..., Mapping[str, Any]] = jwt.decode
_jwt_header: Callable[[str], Mapping[str, Any]] = jwt.decode_header


class AccessDenied(VerificationError):
    """The request may not see the status page; the message says why (for the log)."""


def check_access(settings: StatusSettings, remote_addr: str | None, headers: Mapping[str, str], keys: CertCache) -> str:
    """Who the request comes from ("loopback" or the IAP user's email); raise `AccessDenied` otherwise.

    ``headers`` maps lower-case header names to values.
    """
    if settings.access == "loopback":
        if not is_loopback(remote_addr or ""):
            raise AccessDenied(f"status.access is loopback and the request came from {remote_addr}")
        forwarded = [name for name in FORWARDING_HEADERS if name.lower() in headers]
        if forwarded:
            raise AccessDenied(f"status.access is loopback and the request was forwarded ({', '.join(forwarded)})")
        return "loopback"
    if settings.access == "iap" and settings.iap_audience:
        claims = verify_iap(headers.get(IAP_HEADER.lower()), settings.iap_audience, keys)
        return str(claims.get("email") or claims.get("sub") or "an IAP user")
    raise AccessDenied("the status page is off (status.access)")


def verify_iap(token: str | None, audience: str, keys: CertCache) -> dict[str, Any]:
    """The claims of a valid IAP assertion for ``audience``; raise `AccessDenied` (or `CertsUnavailable`)."""
    if not token:
        raise AccessDenied(f"no {IAP_HEADER} header (is the app behind Identity-Aware Proxy?)")
    try:
        header = _jwt_header(token)
    except (google_exceptions.GoogleAuthError, ValueError, TypeError):
        raise AccessDenied("malformed IAP assertion: not a JSON Web Token") from None
    if header.get("alg") != "ES256":
        raise AccessDenied(f"IAP assertion: unexpected algorithm {_show(header.get('alg'))} (IAP signs with ES256)")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise AccessDenied(f"IAP assertion: unknown key id {_show(kid)}")
    try:
        claims = dict(_jwt_decode(token, certs={kid: key}, audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS))
    except (google_exceptions.GoogleAuthError, ValueError, TypeError) as exc:
        raise AccessDenied(f"IAP assertion rejected: {_reason(exc)}") from None
    if claims.get("iss") != IAP_ISSUER:
        raise AccessDenied(f"IAP assertion: wrong issuer {_show(claims.get('iss'))}")
    return claims


def _reason(exc: Exception) -> str:
    """google-auth's reason in a few words: its messages name the failed check without the token."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
