"""Scorebot's error types.

Every failure a user can act on is one of these, with a message written for
that user (never a traceback, never a secret):

    ScorebotError
    ├── ConfigError          the configuration file is wrong; names file and key path
    ├── SchemaError          the store's schema is not this version's; names the command that fixes it
    ├── VerificationError    a request did not prove it came from Google Chat
    ├── SourceError          a data source could not give counts
    │   ├── SourceUnavailable    unreachable, timed out, HTTP 5xx, throttled
    │   ├── SourceAuthError      wrong credentials or session refused
    │   ├── SourceQueryError     unknown module or field, bad query
    │   └── SourceDataError      an answer that is not what the protocol promises
    └── DeliveryError        a message could not be posted to a Space
"""

from __future__ import annotations


class ScorebotError(Exception):
    """Base of every error Scorebot raises on purpose."""


class ConfigError(ScorebotError):
    """The configuration is invalid; the message names the file and key path."""


class SchemaError(ScorebotError):
    """The store's schema is not the one this version uses (behind it, or unknown); the message says what to run."""


class VerificationError(ScorebotError):
    """A Chat request's bearer token failed verification."""


class SourceError(ScorebotError):
    """A data source failed; the message says why in words a user can act on."""


class SourceUnavailable(SourceError):
    """The source could not be reached or did not answer in time."""


class SourceAuthError(SourceError):
    """The source refused the configured credentials."""


class SourceQueryError(SourceError):
    """The source rejected what the KPI asks for (unknown module, field, query)."""


class SourceDataError(SourceError):
    """The source answered with something that is not what its protocol promises."""


class DeliveryError(ScorebotError):
    """A message could not be delivered to a Space.

    ``retryable`` says whether trying again later may succeed (429, 5xx,
    connection errors) or not (other 4xx such as a deleted webhook).
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
