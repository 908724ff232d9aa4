"""The ``vtiger`` source's settings, in one place for the source and its API client."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from bot.sources.base import SourceSettings
from bot.sources.http import http_url


class VtigerSettings(SourceSettings):
    """``type: vtiger``: where Vtiger is, which API, and whose access key."""

    type: Literal["vtiger"]
    api: Literal["webservice", "rest"] = "webservice"
    url: str
    username: str = Field(min_length=1)
    access_key: SecretStr = Field(min_length=1)
    connect_timeout: float = Field(default=3.05, gt=0, le=60)
    read_timeout: float = Field(default=10, gt=0, le=120)
    requests_per_minute: float | None = Field(default=None, gt=0)
    throttle_retries: int = Field(default=3, ge=0, le=10)
    describe_cache_seconds: float = Field(default=600, ge=0)
    crm_timezone: str = "UTC"
    """The zone Vtiger's database keeps times in (its server's default time zone): neither
    ``describe`` nor ``getchallenge`` tells it, and ``createdtime`` is read and compared in it."""

    @field_validator("crm_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """``crm_timezone`` as a zone."""
        return ZoneInfo(self.crm_timezone)

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = http_url(value)
        for suffix in ("/webservice.php", "/restapi/v1/vtiger/default"):
            value = value.removesuffix(suffix)
        return value
