"""Google's tokens, checked: Chat's requests, Cloud Scheduler's OIDC token, Identity-Aware Proxy's assertion.

One module below every face: Chat (`bot.chat`), the tick's route
(`bot.schedule`) and the status page (`bot.pages`) each call it.

Every Chat request carries ``Authorization: Bearer <JWT>``. Which token it is
depends on the app's "Authentication Audience" (``chat.audience_type``):

- ``project_number``: self-signed by ``chat@system.gserviceaccount.com``;
  ``aud`` is the project number and ``iss`` the same service account.
- ``endpoint_url``: a Google OIDC ID token; ``aud`` is the endpoint URL,
  ``email`` is ``chat@system.gserviceaccount.com`` and ``email_verified`` true.
- ``addon``: a Google OIDC ID token; ``aud`` is the endpoint URL, ``email``
  exactly the configured add-on service account and ``email_verified`` true.

Cloud Scheduler's OIDC token on the tick endpoint is checked by the same code
(`verify_google_oidc`); IAP's ES256 assertion by `verify_iap`, through
google-auth. The certificates come from a `CertCache`, which parses each into
a ``google.auth.crypt`` verifier once, when the set is fetched (not on every
request); the signature is checked with that verifier, then the claims here:
``iat``, ``exp`` and ``nbf`` as finite Unix times (on IAP's assertions too),
``iat``/``exp`` (with 30 s of clock skew), audience, ``nbf`` and the token's
lifetime (at most an hour, as Google issues them).

What the caller should answer:

    VerificationError       401 (403 on the tick and the status page): the
                            request did not prove where it came from
    └── CertsUnavailable    503: the signing certificates could not be fetched,
                            so nothing can be verified right now (Google retries)

Error messages are written for a log line: they name what was wrong, never
the token itself.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any

import requests
from google.auth import crypt, jwt
from google.auth import exceptions as google_exceptions

from bot.config import CHAT_ISSUER, ChatSettings
from bot.errors import VerificationError

IAP_ISSUER = "https://cloud.google.com/iap"
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
CLOCK_SKEW_SECONDS = 30
MAX_TOKEN_LIFETIME_SECONDS = 3600
"""Google's ID tokens and Chat's self-signed tokens live one hour (exp − iat)."""
MAX_UNIX_TIME = 32_503_680_000
"""3000-01-01 00:00 UTC: a time claim past it is no time a real token carries."""
DEFAULT_MAX_AGE = 3600.0
MIN_REFETCH_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 5.0
FAILED_FETCH_PAUSE_SECONDS = 5.0
SIGNED_TOKENS = 256
"""How many tokens whose signature held a `CertCache` remembers (the least recently seen go first)."""
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)", re.IGNORECASE)

# google.auth is not annotated: give the functions used here their types.
_jwt_decode: Callable[..., Mapping[str, Any]] = jwt.decode
_jwt_header: Callable[[str], Mapping[str, Any]] = jwt.decode_header
_rsa_verifier: Callable[[str], crypt.Verifier] = crypt.RSAVerifier.from_string
SignatureCheck = Callable[[bytes, bytes], bool]
"""A parsed public key's check: (signed bytes, signature) → whether the signature holds."""


class CertsUnavailable(VerificationError):
    """The signing certificates could not be fetched: answer 503, not 401."""


class CertCache:
    """Google's signing certificates (``{kid: PEM certificate}``) from one URL, cached.

    The set is kept for the response's ``Cache-Control: max-age`` (an hour
    when absent). A key id that is not in a fresh set triggers a refetch, at
    most once a minute, so a rotated key is picked up without letting
    unknown key ids hammer the certificate endpoint.

    At most one fetch runs at a time, in a thread of its own: every request
    that needs it waits for that one fetch, and no longer than ``timeout``,
    so a hanging endpoint costs each request at most ``timeout`` seconds. A
    failed fetch is remembered: for `FAILED_FETCH_PAUSE_SECONDS` (a minute
    while an older set is still in hand) requests get the same answer at once,
    from the older set or as `CertsUnavailable`.
    """

    def __init__(
        self,
        url: str,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self._session = session
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._certs: dict[str, str] | None = None
        self._verifiers: dict[str, SignatureCheck | None] = {}
        self._expires_at = 0.0
        self._fetched_at = 0.0
        self._in_flight: threading.Event | None = None
        self._failure: CertsUnavailable | None = None
        self._retry_at = 0.0
        self._signed: OrderedDict[str, tuple[str, dict[str, Any], SignatureCheck]] = OrderedDict()
        """Tokens (their exact text) whose signature held: their key id, claims, and the key that checked it."""

    def signed(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """The key id and claims of ``token`` if its signature held before under the key this set still has
        for that id (the same parsed key); None if it must be checked. Only the signature is remembered:
        every claim is checked again on each request."""
        with self._lock:
            known = self._signed.get(token)
            if known is not None:
                self._signed.move_to_end(token)
        if known is None or self.verifier(known[0]) is not known[2]:
            return None
        return known[0], dict(known[1])

    def remember_signed(self, token: str, kid: str, claims: Mapping[str, Any], verifier: SignatureCheck) -> None:
        """Remember that ``verifier`` found ``token``'s signature good (see `signed`)."""
        with self._lock:
            self._signed[token] = (kid, dict(claims), verifier)
            self._signed.move_to_end(token)
            while len(self._signed) > SIGNED_TOKENS:
                self._signed.popitem(last=False)

    def get(self, kid: str) -> str | None:
        """The PEM certificate for ``kid``, or None if Google does not publish it.

        Raises `CertsUnavailable` when the set that would tell cannot be fetched.
        """
        with self._lock:
            done = self._fetch_if_due(kid, self._clock())
        if done is not None and not done.wait(self._timeout):
            raise CertsUnavailable(f"signing certificates at {self.url} did not arrive within {self._timeout:g} s")
        with self._lock:
            if self._certs is not None and kid in self._certs:
                return self._certs[kid]
            if self._failure is not None:
                raise self._failure
            return None

    def verifier(self, kid: str) -> SignatureCheck | None:
        """The parsed public key for ``kid`` (parsed once per fetched set), or None if Google does not publish it.

        Raises `CertsUnavailable` like `get`, and `VerificationError` for a certificate that cannot be read.
        """
        if self.get(kid) is None:
            return None
        with self._lock:
            verifier = self._verifiers.get(kid)
        if verifier is None:
            raise VerificationError(f"the signing certificate for key id {_show(kid)} cannot be read")
        return verifier

    def _fetch_if_due(self, kid: str, now: float) -> threading.Event | None:
        """Start a fetch if this request needs one (or join the one running); the event it may wait on."""
        if self._in_flight is not None:
            return self._in_flight
        certs = self._certs
        expired = certs is None or now >= self._expires_at
        rotated = certs is not None and kid not in certs and now - self._fetched_at >= MIN_REFETCH_SECONDS
        if not (expired or rotated) or now < self._retry_at:
            return None
        self._fetched_at = now
        done = self._in_flight = threading.Event()
        threading.Thread(target=self._fetch, args=(now, done), name="certs-fetch", daemon=True).start()
        return done

    def _fetch(self, started: float, done: threading.Event) -> None:
        """Fetch the set and record the outcome; wake every request waiting on ``done``, whatever happens."""
        outcome: tuple[dict[str, str], float] | CertsUnavailable
        outcome = CertsUnavailable(f"fetching signing certificates from {self.url} failed unexpectedly")
        try:
            outcome = self._download()
        except CertsUnavailable as exc:
            outcome = exc
        finally:
            with self._lock:
                if isinstance(outcome, CertsUnavailable):
                    self._failure = outcome
                    pause = MIN_REFETCH_SECONDS if self._certs else FAILED_FETCH_PAUSE_SECONDS
                    self._retry_at = started + pause
                else:
                    self._certs, self._failure = outcome[0], None
                    self._verifiers = {kid: _parse(pem) for kid, pem in outcome[0].items()}
                    self._expires_at = started + outcome[1]
                self._in_flight = None
            done.set()

    def _download(self) -> tuple[dict[str, str], float]:
        """The certificate set and how long it may be kept; raises `CertsUnavailable`."""
        try:
            if self._session is None:
                response = requests.get(self.url, timeout=self._timeout)
            else:
                response = self._session.get(self.url, timeout=self._timeout)
        except requests.RequestException as exc:
            raise CertsUnavailable(f"cannot fetch signing certificates from {self.url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise CertsUnavailable(f"signing certificates at {self.url} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in body.items()):
            raise CertsUnavailable(f"signing certificates at {self.url} are not a JSON object of key id to PEM")
        match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        return body, float(match.group(1)) if match else DEFAULT_MAX_AGE


def verify_chat_token(authorization_header: str | None, settings: ChatSettings, certs: CertCache) -> dict[str, Any]:
    """Verify a Chat request's bearer token per ``settings.audience_type``; return its claims.

    ``certs`` must serve ``settings.effective_certs_url``. Raises
    `VerificationError` (answer 401) or `CertsUnavailable` (answer 503).
    """
    if not settings.audience:
        raise VerificationError("no chat.audience configured to check tokens against")
    if settings.audience_type == "project_number":
        return _verify(authorization_header, certs, settings.audience, issuers={CHAT_ISSUER})
    if settings.audience_type == "endpoint_url":
        return _verify(
            authorization_header,
            certs,
            settings.audience,
            issuers=GOOGLE_ISSUERS,
            email=CHAT_ISSUER,
            email_verified_required=True,
        )
    if not settings.addon_service_account:
        raise VerificationError("no chat.addon_service_account configured to check add-on tokens against")
    return _verify(
        authorization_header,
        certs,
        settings.audience,
        issuers=GOOGLE_ISSUERS,
        email=settings.addon_service_account,
        email_verified_required=True,
    )


def verify_google_oidc(
    authorization_header: str | None, audience: str, service_account: str, certs: CertCache
) -> dict[str, Any]:
    """Verify a Google OIDC ID token (e.g. Cloud Scheduler's) for ``audience`` and ``service_account``.

    ``certs`` must serve Google's OAuth2 certificates (``GOOGLE_OIDC_CERTS_URL``).
    Raises `VerificationError` (answer 401) or `CertsUnavailable` (answer 503).
    """
    return _verify(authorization_header, certs, audience, issuers=GOOGLE_ISSUERS, email=service_account)


def _verify(
    header: str | None,
    certs: CertCache,
    audience: str,
    *,
    issuers: Collection[str],
    email: str | None = None,
    email_verified_required: bool = False,
) -> dict[str, Any]:
    """The one verification path: bearer, shape, key, signature, time, audience, issuer, email."""
    token = _bearer_token(header)
    known = certs.signed(token)
    if known is None:
        kid, claims = _unverified(token)
        verifier = certs.verifier(kid)
        if verifier is None:
            raise VerificationError(f"unknown key id {_show(kid)}")
        signed, _, signature = token.rpartition(".")
        if not _signature_holds(verifier, signed, signature):
            raise VerificationError("bad signature")
        certs.remember_signed(token, kid, claims, verifier)
    else:
        _kid, claims = known
    _check_time_claims(claims)
    _check_times_and_audience(claims, audience)
    _check_lifetime(claims)
    if claims.get("iss") not in issuers:
        raise VerificationError(f"wrong issuer {_show(claims.get('iss'))}")
    if email is not None:
        if claims.get("email") != email:
            raise VerificationError(f"wrong email {_show(claims.get('email'))} (expected {email!r})")
        verified = claims.get("email_verified")
        if verified is False or (email_verified_required and verified is not True):
            raise VerificationError(f"email not verified (email_verified is {_show(verified)})")
    return claims


def verify_iap(token: str, audience: str, keys: CertCache) -> dict[str, Any]:
    """The claims of a valid IAP assertion (ES256 JWT) for ``audience``, its keys from ``keys``.

    Raises `VerificationError` (answer 403) or `CertsUnavailable` (answer 503).
    """
    try:
        header = _jwt_header(token)
    except (google_exceptions.GoogleAuthError, ValueError, TypeError):
        raise VerificationError("malformed IAP assertion: not a JSON Web Token") from None
    if header.get("alg") != "ES256":
        raise VerificationError(
            f"IAP assertion: unexpected algorithm {_show(header.get('alg'))} (IAP signs with ES256)"
        )
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise VerificationError(f"IAP assertion: unknown key id {_show(kid)}")
    try:
        _check_time_claims(_jwt_decode(token, verify=False))
        claims = dict(_jwt_decode(token, certs={kid: key}, audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS))
    except (google_exceptions.GoogleAuthError, ValueError, TypeError) as exc:
        raise VerificationError(f"IAP assertion rejected: {_reason(exc)}") from None
    if claims.get("iss") != IAP_ISSUER:
        raise VerificationError(f"IAP assertion: wrong issuer {_show(claims.get('iss'))}")
    return claims


def _check_time_claims(claims: Mapping[str, Any]) -> None:
    """Refuse a token whose ``iat`` or ``exp`` is missing, or whose ``iat``, ``exp`` or ``nbf`` is not a Unix time.

    A Unix time here is an int or a float from 0 to `MAX_UNIX_TIME`: never a
    string, a boolean, NaN or ±Infinity. JSON has no NaN or Infinity, yet
    Python's json module, which google-auth decodes tokens with, reads the
    literals ``NaN``, ``Infinity`` and ``-Infinity`` (and ``1e400`` as
    Infinity); every comparison with NaN is false, so such a claim would pass
    every time check.
    """
    if not all(key in claims for key in ("iat", "exp")):
        raise VerificationError("malformed token: no numeric iat and exp claims")
    for key in ("iat", "exp", "nbf"):
        if key not in claims:
            continue
        value = claims[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise VerificationError(f"malformed token: {key} is {_show(value)}, not a number")
        if not 0 <= value <= MAX_UNIX_TIME:
            raise VerificationError(f"malformed token: {key} is {_show(value)}, not a Unix time")


def _check_lifetime(claims: Mapping[str, Any]) -> None:
    """Refuse what google-auth lets through: ``nbf`` in the future, and a longer life than Google gives a token."""
    now = time.time()
    not_before = claims.get("nbf")
    if not_before is not None and not_before - CLOCK_SKEW_SECONDS > now:
        raise VerificationError(f"token not valid for another {int(not_before - now)} s (nbf in the future)")
    lifetime = claims["exp"] - claims["iat"]
    if lifetime > MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise VerificationError(
            f"token lifetime {int(lifetime)} s is longer than the {MAX_TOKEN_LIFETIME_SECONDS} s Google issues"
        )


def _bearer_token(header: str | None) -> str:
    if not header or not header.strip():
        raise VerificationError("missing Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise VerificationError("Authorization header is not a Bearer token")
    token = token.strip()
    if not token:
        raise VerificationError("malformed token: empty")
    return token


def _unverified(token: str) -> tuple[str, dict[str, Any]]:
    """The token's key id and claims, read without any check; raise if it is not a JWT."""
    try:
        header = _jwt_header(token)
        payload = _jwt_decode(token, verify=False)
    except (google_exceptions.GoogleAuthError, ValueError, TypeError):
        raise VerificationError("malformed token: not a JSON Web Token") from None
    if header.get("alg") != "RS256":
        raise VerificationError(f"malformed token: unsupported algorithm {_show(header.get('alg'))}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise VerificationError("malformed token: no key id")
    return kid, dict(payload)


def _parse(pem: str) -> SignatureCheck | None:
    """A certificate's public key, ready to check signatures; None if it cannot be read."""
    try:
        check: SignatureCheck = _rsa_verifier(pem).verify
    except (ValueError, TypeError):
        return None
    return check


def _signature_holds(verifier: SignatureCheck, signed: str, signature: str) -> bool:
    """Whether ``signature`` (base64url, unpadded) signs ``signed`` (the token's header and payload)."""
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (binascii.Error, ValueError):
        return False
    return verifier(signed.encode(), raw)


def _check_times_and_audience(claims: Mapping[str, Any], audience: str) -> None:
    """Refuse a token expired, issued in the future, or for another audience (its times checked before)."""
    now = time.time()
    if claims["exp"] + CLOCK_SKEW_SECONDS < now:
        raise VerificationError(f"token expired {int(now - claims['exp'])} s ago")
    if claims["iat"] - CLOCK_SKEW_SECONDS > now:
        raise VerificationError("token issued in the future (check the clock)")
    if claims.get("aud") != audience:
        raise VerificationError(f"wrong audience {_show(claims.get('aud'))} (expected {audience!r})")


def _reason(exc: Exception) -> str:
    """google-auth's reason in a few words: its messages name the failed check without the token."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _show(value: Any) -> str:
    """A claim value for a log line: quoted and cut short (it comes from the caller)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
