"""Scorebot's configuration: one YAML file, validated completely at start.

Where the file comes from: ``--config PATH``, else ``$SCOREBOT_CONFIG``, else
the bundled ``config/demo.yaml``. Secrets are written as ``${ENV_VAR}`` and
filled in from the environment. Relative paths inside the file are relative
to the file. Every problem becomes one ``ConfigError`` naming the file, the
key path and what is wrong.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import CroniterError, croniter
from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from bot import secrets
from bot.alert_settings import AlertSettings, merged
from bot.errors import ConfigError
from bot.sources import SOURCE_TYPES
from bot.sources.base import SourceSettings, StrictModel, category_key

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DEMO_CONFIG = PACKAGE_DIR / "config" / "demo.yaml"
CHAT_ISSUER = "chat@system.gserviceaccount.com"
CHAT_CERTS_URL = "https://www.googleapis.com/service_accounts/v1/metadata/x509/" + CHAT_ISSUER
GOOGLE_OIDC_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
IAP_KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"
"""Identity-Aware Proxy's signing keys as ``{kid: PEM public key}``."""
MIN_SIGNING_KEY = 16

COMMAND_WORDS = ("help", "all", "alerts", "settings", "link", "unlink")
"""Words `/score` takes instead of a team id, so no team may have them as its id."""
MAX_KPIS_PER_TEAM = 20
"""Four widgets a KPI at most (index, chart, stale note, breakdown) keeps a team's card under Chat's 100 widgets."""

MAX_TOP_ITEMS = 10
"""The most open items a KPI's card lists."""

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_SPACE = re.compile(r"spaces/[A-Za-z0-9_-]+")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
log = logging.getLogger(__name__)
EDITABLE_FIELDS = ("schedule", "timezone", "live", "alerts", "snooze", "kpis")
"""What a team may change for itself from its Space, when ``settings.editable`` names it."""
SPACE_MANAGERS = "space-managers"
"""The editor entry that means: the managers of the team's Space (asked of the Chat API)."""
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DOMAIN = re.compile(r"\*@[^@\s*]+\.[^@\s*]+")
CRON_FIELDS = (
    "minute (0-59)",
    "hour (0-23)",
    "day of month (1-31)",
    "month (1-12, jan-dec)",
    "day of week (0-7, sun-sat)",
)
"""The five fields of a cron expression, in order, with the values each takes."""


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid id: use 1 to 40 lowercase letters, digits and hyphens, "
            "starting with a letter or digit"
        )
    return value


def _space_name(value: str) -> str:
    if not _SPACE.fullmatch(value):
        raise ValueError(f"{value!r} is not a Space name: write it as spaces/ID, e.g. spaces/AAAAxxxx")
    return value


def _not_negative(value: float) -> float:
    if value < 0:
        raise ValueError(f"a weight cannot be negative (got {value:g})")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
SpaceName = Annotated[str, AfterValidator(_space_name)]
Name = Annotated[str, Field(min_length=1, max_length=80)]
Weight = Annotated[float, AfterValidator(_not_negative)]


class ChatSettings(StrictModel):
    """How Scorebot talks to Google Chat, and how it checks who is talking."""

    verify: bool = True
    audience_type: Literal["project_number", "endpoint_url", "addon"] = "project_number"
    audience: str | None = None
    certs_url: str | None = None
    addon_service_account: str | None = None
    score_command_id: int = 1
    private_replies: bool = True
    service_account_file: str | None = None
    api_endpoint: str | None = None

    @model_validator(mode="after")
    def _audience_needed(self) -> ChatSettings:
        if self.verify and not self.audience:
            raise ValueError("audience is required while verify is true (verify: false is for local trials only)")
        if self.audience_type == "addon" and self.verify and not self.addon_service_account:
            raise ValueError("addon_service_account is required for audience_type addon")
        return self

    @property
    def effective_certs_url(self) -> str:
        """The certificate URL tokens are checked against."""
        if self.certs_url:
            return self.certs_url
        return CHAT_CERTS_URL if self.audience_type == "project_number" else GOOGLE_OIDC_CERTS_URL

    @property
    def button_function(self) -> str:
        """The ``action.function`` of card buttons: add-ons need the endpoint URL."""
        if self.audience_type == "addon" and self.audience:
            return self.audience
        return "refresh"


class WebhookTarget(StrictModel):
    """Post through a Space's incoming webhook (one-way: no clickable buttons)."""

    type: Literal["webhook"]
    url: SecretStr
    thread: str | None = None

    @field_validator("url")
    @classmethod
    def _https(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        loopback = parts.scheme == "http" and is_loopback(parts.hostname or "")
        if not (parts.scheme == "https" or loopback) or not parts.hostname:
            raise ValueError("must be the Space's https:// webhook URL (copied from the Space's Webhooks page)")
        return value


class ChatApiTarget(StrictModel):
    """Post as the app through the Chat API (the card keeps its Refresh button).

    ``live: day | week`` keeps one message per period that later posts and
    Refresh clicks update in place; ``off`` posts a new message each time.
    """

    type: Literal["chat_api"]
    space: SpaceName
    thread: str | None = None
    live: Literal["day", "week", "off"] = "off"

    @model_validator(mode="after")
    def _live_not_threaded(self) -> ChatApiTarget:
        if self.live != "off" and self.thread:
            raise ValueError("a live card is one message updated in place: leave out thread, or set live: off")
        return self


class LogTarget(StrictModel):
    """Keep the message in the store's outbox, with one line on the console."""

    type: Literal["log"]


DeliveryTarget = Annotated[WebhookTarget | ChatApiTarget | LogTarget, Field(discriminator="type")]


KpiKind = Literal["count", "closed", "aged", "value"]
"""What a KPI measures: open items (count), items closed in a window (closed), open items older than a
number of days (aged), or one number a source reports (value)."""
COUNTED_KINDS = ("count", "closed", "aged")
"""The kinds whose index is Σ weight × items, per category."""
MAX_KPI_DAYS = 3660


class KpiConfig(StrictModel):
    """One KPI: what to measure where, how to weigh it, and what is good."""

    id: Slug
    name: Name
    source: str
    kind: KpiKind = "count"
    days: int | None = Field(default=None, ge=1, le=MAX_KPI_DAYS)
    """closed: the window (items closed within the last ``days``); aged: the age an open item is counted from."""
    unit: str | None = Field(default=None, min_length=1, max_length=20)
    """value: what the number is in, shown beside it ("ms", "%", or a word)."""
    count: Any = Field(default_factory=dict)
    category: str
    weights: dict[str, Weight]
    lower_is_better: bool = True
    """Default: true, but false for ``closed`` (more closed is better)."""
    target: float
    warning: float
    crm_url: str | None = None
    top: int = Field(default=3, ge=0, le=MAX_TOP_ITEMS)
    """How many of the heaviest open items the card lists (0: none)."""

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_kind(cls, data: Any) -> Any:
        """A closed KPI is better higher; a value KPI has no category and no weights."""
        if not isinstance(data, dict):
            return data
        if "lower_is_better" not in data and data.get("kind") == "closed":
            data = {**data, "lower_is_better": False}
        if data.get("kind") == "value":
            if "category" in data or "weights" in data:
                raise ValueError("a value KPI is one number: leave out category and weights")
            data = {**data, "category": "", "weights": {}}
        return data

    @model_validator(mode="after")
    def _kind_keys(self) -> KpiConfig:
        if self.kind in ("closed", "aged") and self.days is None:
            what = "items closed within the last N days" if self.kind == "closed" else "open items older than N days"
            raise ValueError(f"a {self.kind} KPI needs days ({what})")
        if self.kind not in ("closed", "aged") and self.days is not None:
            raise ValueError(f"days is for closed and aged KPIs, not {self.kind}")
        if self.unit is not None and self.kind != "value":
            raise ValueError(f"unit is for value KPIs; a {self.kind} KPI counts items")
        return self

    @model_validator(mode="after")
    def _levels_ordered(self) -> KpiConfig:
        if self.lower_is_better and self.warning < self.target:
            raise ValueError("warning must be >= target for a lower-is-better KPI")
        if not self.lower_is_better and self.warning > self.target:
            raise ValueError("warning must be <= target for a higher-is-better KPI")
        return self

    @property
    def scannable(self) -> bool:
        """Whether a shared scan of its filter's open items can answer it (count, and aged: the rows created
        before its cut-off); a closed KPI's window and a value are read alone."""
        return self.kind in ("count", "aged")

    @property
    def counted(self) -> bool:
        """Whether the KPI's index is Σ weight × items (every kind but ``value``)."""
        return self.kind in COUNTED_KINDS


class TeamConfig(StrictModel):
    """A team: its Spaces, its KPIs, and when and where it is told."""

    id: Slug
    name: Name
    spaces: list[SpaceName] = Field(default_factory=list)
    crm_url: str | None = None
    timezone: str | None = None
    schedule: str | None = None
    deliver: list[DeliveryTarget] = Field(default_factory=list)
    template: str | None = None
    on_failure: Literal["post_stale", "skip"] = "post_stale"
    alerts: AlertSettings | None = None
    """Alerts between posts; none without the block (after loading: laid over the top-level defaults)."""
    kpis: list[KpiConfig] = Field(min_length=1, max_length=MAX_KPIS_PER_TEAM)

    @field_validator("id")
    @classmethod
    def _not_a_command_word(cls, value: str) -> str:
        if value in COMMAND_WORDS:
            raise ValueError(f"{value!r} cannot be a team id: `/score {value}` means something else")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    def live_target(self, space: str | None) -> ChatApiTarget | None:
        """The team's Chat API target with a live card in ``space``, if any."""
        return next(
            (t for t in self.deliver if isinstance(t, ChatApiTarget) and t.live != "off" and t.space == space), None
        )

    def lists_new_items(self, kpi: KpiConfig) -> bool:
        """Whether the team's alerts list ``kpi``'s new items: a count KPI weighing one of ``new_items``."""
        wanted = {category_key(name) for name in self.alerts.new_items} if self.alerts else set()
        return kpi.kind == "count" and any(category_key(name) in wanted for name in kpi.weights)

    @model_validator(mode="after")
    def _unique_kpis(self) -> TeamConfig:
        _no_duplicates([k.id for k in self.kpis], "KPI id")
        return self


class ScheduleSettings(StrictModel):
    """How scheduled posts are driven."""

    tick_seconds: float = Field(default=30, gt=0)
    grace_minutes: float = Field(default=60, gt=0)
    deadline_seconds: float = Field(default=100, gt=0)
    lease_seconds: float = Field(default=180, gt=0)
    concurrency: int = Field(default=16, ge=1, le=32)
    pace_seconds: float = Field(default=1.0, ge=0)
    cron_audience: str | None = None
    cron_service_account: str | None = None
    changed_secret: SecretStr | None = None
    """The HMAC key a CRM workflow signs ``POST /tasks/changed`` with (see the alerts documentation)."""

    _changed_secret_long_enough = field_validator("changed_secret")(lambda value: _long_secret(value))

    @model_validator(mode="after")
    def _lease_outlives_tick(self) -> ScheduleSettings:
        if self.lease_seconds <= self.deadline_seconds:
            raise ValueError("lease_seconds must be longer than deadline_seconds, or a slow tick loses its claims")
        return self


class HistorySettings(StrictModel):
    """Retention: how long readings are kept in full, and slot, delivery and outbox rows at all."""

    keep_days: int = Field(default=400, ge=7, le=36_500)
    """Older readings are thinned to each KPI's last one a day; older scheduler rows are deleted.
    At least 7, for the card's "vs 7 days ago" and the scheduler's look back at missed slots."""


class ChartSettings(StrictModel):
    """Trend charts: signed image URLs served by the app itself."""

    secret: SecretStr | None = None
    days: int = Field(default=30, ge=7, le=400)
    link_days: int = Field(default=30, ge=1, le=400)

    _long_enough = field_validator("secret")(lambda value: _long_secret(value))


def _long_secret(value: SecretStr | None) -> SecretStr | None:
    """A signing key of at least `MIN_SIGNING_KEY` characters (an empty one is none)."""
    if value is None or not value.get_secret_value():
        return None
    if len(value.get_secret_value()) < MIN_SIGNING_KEY:
        raise ValueError(
            f"at least {MIN_SIGNING_KEY} characters; make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


class StatusSettings(StrictModel):
    """Who may see the status page: nobody (off), this machine (loopback), or Identity-Aware Proxy users (iap)."""

    access: Literal["off", "loopback", "iap"] = "off"
    iap_audience: str | None = None
    iap_keys_url: str = IAP_KEYS_URL

    @field_validator("access", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML reads a bare `off` as false

    @model_validator(mode="after")
    def _audience_for_iap(self) -> StatusSettings:
        if self.access == "iap" and not self.iap_audience:
            raise ValueError(
                "iap_audience is required for access iap (App Engine: /projects/PROJECT_NUMBER/apps/PROJECT_ID)"
            )
        return self


class SettingsPolicy(StrictModel):
    """What teams may change for themselves from their Space, and who may change it."""

    editable: list[Literal["schedule", "timezone", "live", "alerts", "snooze", "kpis"]] = Field(default_factory=list)
    editors: list[str] = Field(default_factory=list)
    """Emails, ``*@domain`` (everyone of a domain) or ``space-managers`` (the managers of the team's Space)."""
    link: Literal["editors", "off"] = "off"
    """Whether editors may link a Space to a team with ``/score link TEAM`` (and unlink it)."""

    @field_validator("link", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML reads a bare `off` as false

    @field_validator("editable")
    @classmethod
    def _no_repeated_field(cls, value: list[str]) -> list[str]:
        _no_duplicates(value, "editable field")
        return value

    @field_validator("editors")
    @classmethod
    def _editor_forms(cls, value: list[str]) -> list[str]:
        for editor in value:
            if not (editor == SPACE_MANAGERS or _EMAIL.fullmatch(editor) or _DOMAIN.fullmatch(editor)):
                raise ValueError(
                    f"{editor!r} is not an editor: write an email (ana@example.com), *@domain (*@example.com) "
                    f"or {SPACE_MANAGERS}"
                )
        _no_duplicates([editor.casefold() for editor in value], "editor")
        return [editor.casefold() for editor in value]


class Config(StrictModel):
    """The whole configuration, after validation."""

    chat: ChatSettings
    store: str = "sqlite:///scorebot.db"
    timezone: str = "UTC"
    fetch_budget_seconds: float = Field(default=8, gt=0, le=25)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    public_url: str | None = None
    charts: ChartSettings = Field(default_factory=ChartSettings)
    status: StatusSettings = Field(default_factory=StatusSettings)
    alerts: AlertSettings | None = None
    """Defaults for the teams' ``alerts`` blocks (alerts nothing by itself)."""
    settings: SettingsPolicy = Field(default_factory=SettingsPolicy)
    """What teams may change from their Space (`bot.team_settings`), and who."""
    sources: dict[str, Any]
    teams: list[TeamConfig] = Field(min_length=1)
    path: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("public_url")
    @classmethod
    def _public_https(cls, value: str | None) -> str | None:
        return None if value is None else check_public_url(value)

    @model_validator(mode="after")
    def _unique_teams(self) -> Config:
        _no_duplicates([t.id for t in self.teams], "team id")
        _no_duplicates([space for t in self.teams for space in t.spaces], "Space (a Space belongs to one team)")
        return self

    def team(self, team_id: str) -> TeamConfig | None:
        """The team with this id, if any."""
        return next((t for t in self.teams if t.id == team_id), None)

    def team_for_space(self, space_name: str | None) -> TeamConfig | None:
        """The team a Space belongs to, if any."""
        return next((t for t in self.teams if space_name and space_name in t.spaces), None)

    def zone(self, team: TeamConfig) -> ZoneInfo:
        """The team's time zone, else the config's default."""
        return ZoneInfo(team.timezone or self.timezone)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_public_url(value: str) -> str:
    """``value`` without a trailing slash if it is an https:// address (or http:// on loopback); else ValueError."""
    parts = urlsplit(value)
    loopback = parts.scheme == "http" and is_loopback(parts.hostname or "")
    if not (parts.scheme == "https" or loopback) or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("must be the app's public https:// address (Chat shows images from https URLs only)")
    return value.rstrip("/")


def check_zone(value: str) -> str:
    """``value`` if it names an IANA time zone; else ValueError saying it does not."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


def check_cron(value: str) -> str:
    """``value`` if it is a five-field cron expression that fires; else ValueError naming what is wrong."""
    _check_cron_fields(value)
    try:
        croniter(value, datetime(2026, 1, 1)).get_next(datetime)
    except CroniterError:
        raise ValueError(f"cron expression {value!r} never fires") from None
    return value


def _check_cron_fields(expression: str) -> None:
    """Raise ``ValueError`` naming the field of ``expression`` that is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"not a five-field cron expression ({len(fields)} fields): {expression!r}")
    for index, field in enumerate(fields):
        alone = " ".join(field if i == index else "*" for i in range(5))
        if not croniter.is_valid(alone):
            raise ValueError(f"cron expression {expression!r}: {field!r} is not a valid {CRON_FIELDS[index]}")
    if not croniter.is_valid(expression):
        raise ValueError(f"not a valid cron expression: {expression!r}")


def _no_duplicates(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {what} {item!r}")
        seen.add(item)


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping names the same key twice (the later one would silently win)."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        lines = f"twice on line {first}" if first == second else f"on lines {first} and {second}"
        super().__init__(f"duplicate key {key!r} {lines}")


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key (a ``<<`` merge may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build the mapping after checking that no key appears twice."""
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:  # an unhashable key: the base loader says so
                continue
            if first is not None:
                raise DuplicateKeyError(key, first, line)
            lines[key] = line
        return super().construct_mapping(node, deep)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: explicit path, else $SCOREBOT_CONFIG, else the demo."""
    chosen = explicit or os.environ.get("SCOREBOT_CONFIG")
    return Path(chosen) if chosen else DEMO_CONFIG


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, fill in and validate a config file; raise ``ConfigError`` on any problem."""
    file = config_path(path)
    env = os.environ if env is None else env
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the file ({exc.strerror})") from None
    except DuplicateKeyError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    raw = _fill_env(raw, env, file, ())
    try:
        config = Config.model_validate({**raw, "path": file.resolve()})
    except ValidationError as exc:
        raise ConfigError(_describe(file, exc, ())) from None
    sources = {name: _source_settings(file, name, block) for name, block in config.sources.items()}
    teams = [_resolve_queries(file, i, team, sources) for i, team in enumerate(config.teams)]
    teams = [_resolve_alerts(file, i, team, config.alerts) for i, team in enumerate(teams)]
    config = config.model_copy(update={"sources": sources, "teams": teams})
    _register_secrets(file, config, ())
    return config


def _register_secrets(file: Path, node: Any, where: tuple[str | int, ...]) -> None:
    """Register every secret in the configuration (`bot.secrets`); warn about those too short to hide.

    Secret settings (``SecretStr``: webhook URLs, access keys, tokens, passwords)
    are registered whole, and a secret URL's password and query values too;
    the password written into any other URL (``store``, a source's ``url``) is
    registered as well.
    """
    if isinstance(node, SecretStr):
        value = node.get_secret_value()
        registered = secrets.register_url(value) if "://" in value else secrets.register(value)
        if not registered:
            log.warning(
                "%s: %s: the secret is shorter than %d characters, too short to hide by value in logs and errors; "
                "use a longer one",
                file,
                _dotted(where),
                secrets.MIN_LENGTH,
            )
    elif isinstance(node, str) and "://" in node:
        with contextlib.suppress(ValueError):  # not a URL after all; the setting's own check reports it
            secrets.register(urlsplit(node).password)
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            _register_secrets(file, getattr(node, name), (*where, name))
    elif isinstance(node, dict):
        for key, value in node.items():
            _register_secrets(file, value, (*where, str(key)))
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            _register_secrets(file, value, (*where, index))


def _source_settings(file: Path, name: str, block: Any) -> SourceSettings:
    where = ("sources", name)
    if not isinstance(block, dict):
        raise ConfigError(f"{file}: {_dotted(where)}: expected a mapping")
    kind = block.get("type")
    source_type = SOURCE_TYPES.get(kind) if isinstance(kind, str) else None
    if source_type is None:
        known = ", ".join(sorted(SOURCE_TYPES))
        raise ConfigError(f"{file}: {_dotted((*where, 'type'))}: unknown source type {kind!r} (known: {known})")
    try:
        settings: SourceSettings = source_type.Settings.model_validate(block)
    except ValidationError as exc:
        raise ConfigError(_describe(file, exc, where)) from None
    return settings


def _resolve_queries(file: Path, index: int, team: TeamConfig, sources: dict[str, SourceSettings]) -> TeamConfig:
    kpis = []
    for k, kpi in enumerate(team.kpis):
        where: tuple[str | int, ...] = ("teams", index, "kpis", k)
        settings = sources.get(kpi.source)
        if settings is None:
            known = ", ".join(sorted(sources)) or "none"
            raise ConfigError(
                f"{file}: {_dotted((*where, 'source'))}: no source named {kpi.source!r} (defined: {known})"
            )
        query_model = SOURCE_TYPES[settings.type].Query
        try:
            query = query_model.model_validate(kpi.count or {})
        except ValidationError as exc:
            raise ConfigError(_describe(file, exc, (*where, "count"))) from None
        problem = query.unfit_for(kpi.kind)
        if problem:
            raise ConfigError(f"{file}: {_dotted((*where, 'kind'))}: {problem}")
        kpis.append(kpi.model_copy(update={"count": query}))
    return team.model_copy(update={"kpis": kpis})


def _resolve_alerts(file: Path, index: int, team: TeamConfig, defaults: AlertSettings | None) -> TeamConfig:
    """The team's ``alerts`` block over the top-level defaults, checked against the team's KPIs."""
    if team.alerts is None:
        return team
    where: tuple[str | int, ...] = ("teams", index, "alerts")
    try:
        settings = merged(defaults, team.alerts)
    except ValidationError as exc:
        raise ConfigError(_describe(file, exc, where)) from None
    problem = alerts_problem(team.kpis, settings)
    if problem:
        raise ConfigError(f"{file}: {_dotted((*where, problem[0]))}: {problem[1]}")
    return team.model_copy(update={"alerts": settings})


def alerts_problem(kpis: list[KpiConfig], settings: AlertSettings) -> tuple[str, str] | None:
    """What is wrong with a team's alert settings given its KPIs, as (key, message); None if nothing."""
    if not isinstance(settings.recover_at, str):
        for kpi in kpis:
            line = kpi.target if settings.alert_on_warning else kpi.warning
            worse = settings.recover_at > line if kpi.lower_is_better else settings.recover_at < line
            if worse:
                return "recover_at", (
                    f"{settings.recover_at:g} is past the line "
                    f"KPI {kpi.id!r} alerts at ({line:g}), so an alert could end while still alerting: "
                    f"use a value at or "
                    f"{'below' if kpi.lower_is_better else 'above'} {line:g}, or target"
                )
    known = {category.casefold(): category for kpi in kpis for category in kpi.weights}
    for category in settings.new_items:
        if category.strip().casefold() not in known:
            return "new_items", (
                f"{category!r} is not a weighted category of the team's "
                f"KPIs (weighted: {', '.join(sorted(known.values()))})"
            )
    return None


def _fill_env(node: Any, env: Mapping[str, str], file: Path, where: tuple[str | int, ...]) -> Any:
    if isinstance(node, dict):
        return {key: _fill_env(value, env, file, (*where, str(key))) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill_env(value, env, file, (*where, i)) for i, value in enumerate(node)]
    if isinstance(node, str):
        for name in _ENV_REF.findall(node):
            if name not in env:
                raise ConfigError(f"{file}: {_dotted(where)}: environment variable {name} is not set")
        return _ENV_REF.sub(lambda m: env[m.group(1)], node)
    return node


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}


def _describe(file: Path, exc: ValidationError, prefix: tuple[str | int, ...]) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
        lines.append(f"{file}: {_dotted((*prefix, *loc)) or '(top level)'}: {message}")
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in {"webhook", "chat_api", "log"}


def _dotted(parts: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(parts))


def iter_kpis(config: Config) -> Iterator[tuple[TeamConfig, KpiConfig]]:
    """Every (team, KPI) pair in configuration order."""
    for team in config.teams:
        for kpi in team.kpis:
            yield team, kpi
