"""Who may see the status page (``status.access``).

- ``off`` (the default): nobody.
- ``loopback``: requests from this machine only (127.0.0.0/8, ::1), and none
  that a local proxy forwarded for someone else (``X-Forwarded-For``,
  ``Forwarded`` or ``X-Real-IP`` present).
- ``iap``: requests that passed Google's Identity-Aware Proxy, proved by the
  ``X-Goog-IAP-JWT-Assertion`` header: an ES256 JWT signed with one of IAP's
  keys (``status.iap_keys_url``, ``{kid: PEM public key}``), for
  ``status.iap_audience``, issued by ``https://cloud.google.com/iap``. The
  signature, ``iat``/``exp`` and audience are checked by
  `bot.google_tokens.verify_iap`.

`check_access` returns who is looking, or raises `AccessDenied` (answer 403)
or `CertsUnavailable` (answer 503: IAP's keys could not be fetched).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.config import StatusSettings, is_loopback
from bot.errors import VerificationError
from bot.google_tokens import CertCache, CertsUnavailable, verify_iap

IAP_HEADER = "X-Goog-IAP-JWT-Assertion"
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


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
        token = headers.get(IAP_HEADER.lower())
        if not token:
            raise AccessDenied(f"no {IAP_HEADER} header (is the app behind Identity-Aware Proxy?)")
        try:
            claims = verify_iap(token, settings.iap_audience, keys)
        except CertsUnavailable:
            raise
        except VerificationError as exc:
            raise AccessDenied(str(exc)) from None
        return str(claims.get("email") or claims.get("sub") or "an IAP user")
    raise AccessDenied("the status page is off (status.access)")
