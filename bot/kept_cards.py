"""`/score`'s kept cards: a team's card kept as JSON text, answered again without being built while nothing
on it would read differently.

A card is kept per team, time zone, Refresh function and Settings button when
every KPI on it is shown from its stored reading. It is answered again while:

- the team's change marker (one primary-key read: it moves with every
  reading, delivery record and pruning of the team, by any process) is the
  one the card's history was read at, so a reading or post from any process
  shows at once;
- the team's configuration is the same;
- the clock is before the first moment any other text on the card would
  change: a KPI's reading growing too old to show (its source's
  ``cache_seconds``), its age reaching a minute or passing a whole minute
  ("read 2 min ago"), an item's age passing a whole hour ("5 h"), the local
  and the UTC day ("today 10:00", the sparkline's days, the chart links), and
  the end of the history the report kept (`bot.reports.KEEP_HISTORY`).

The card's time and the seconds of "read N s ago" are filled in on every
request. A card is kept only if its text made with those left open
(`bot.cards.slot`), filled in for the moment it was made, is exactly the card
made for that moment. The seconds only grow, and the card is answered again
only while its time is as long as then (the zone's abbreviation may change)
and the whole within `bot.cards.MAX_MESSAGE_BYTES`, so a card shortened to fit
Chat's limit is shortened just as a card made then would be. The request's
token is verified before any of this.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot.cards import MAX_MESSAGE_BYTES, Encoded, Message, local_time, team_message, within_limits
from bot.config import TeamConfig
from bot.reports import Reporter, TeamReport
from bot.store import Store

_SLOT = re.compile(r"\\ue000([a-z0-9-]*)\\ue001")
"""`bot.cards.slot` as JSON text writes it (the private-use characters escaped), its key captured."""
_Key = tuple[str, str, str | None, bool]
"""A kept card's team id, zone, Refresh function and whether it has a Settings button."""
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class KeptCard:
    """A team's card as JSON text cut at its slots (text, key, text, ..., text), valid for ``team`` while its
    change marker is ``version`` and the clock is in [``since``, ``until``)."""

    team: TeamConfig
    zone: ZoneInfo
    version: int
    since: datetime
    until: datetime
    parts: tuple[str, ...]
    read_at: Mapping[str, datetime]
    """Each KPI's reading time, by KPI id."""
    time_length: int
    """How long the card's time was (in JSON text) when it was made."""

    def holds(self, team: TeamConfig, version: int, now: datetime) -> bool:
        """Whether the card still reads the same (but for its slots) for this team, marker and moment."""
        same = team is self.team or team == self.team
        return same and version == self.version and self.since <= now < self.until

    def text(self, now: datetime) -> str | None:
        """The card's JSON text at ``now``: its time, and each KPI's seconds since its reading; None if
        that would not be the card made at ``now`` (its time has another length, or the card is too long)."""
        parts = list(self.parts)
        for index in range(1, len(parts), 2):
            key = parts[index]
            if key:
                parts[index] = str(max(0, int((now - self.read_at[key]).total_seconds())))
            else:
                parts[index] = _time_text(now.replace(second=0, microsecond=0), self.zone)
                if len(parts[index]) != self.time_length:
                    return None
        text = "".join(parts)
        return text if len(text) <= MAX_MESSAGE_BYTES else None


class KeptCards:
    """The cards `/score` keeps in this process, one per (team, zone, Refresh function, Settings button)."""

    def __init__(self, reporter: Reporter, store: Store, clock: Callable[[], datetime]) -> None:
        self.reporter = reporter
        self.store = store
        self.clock = clock
        self._cards: dict[_Key, KeptCard] = {}

    def card(
        self,
        team: TeamConfig,
        zone: str,
        refresh_function: str | None,
        settings: bool,
        report: Callable[[], TeamReport],
    ) -> Message | Encoded:
        """The team's card (`bot.cards.team_message`): the kept one while it holds (one marker read), else made
        from ``report()``."""
        key = (team.id, zone, refresh_function, settings)
        kept = self._cards.get(key)
        if kept is not None:
            now = self.clock()
            try:
                version = self.store.team_version(team.id)
            except SQLAlchemyError:  # the report says what the store could not give
                version = None
            if version is not None and kept.holds(team, version, now) and (text := kept.text(now)) is not None:
                return Encoded(text)
        made = report()
        message = team_message(made, refresh_function=refresh_function, settings=settings)
        encoded = self._keep(key, made, message)
        return message if encoded is None else Encoded(encoded)

    def _keep(self, key: _Key, report: TeamReport, message: Message) -> str | None:
        """Keep ``message``, the card of ``report``, if it may be kept; its JSON text if kept."""
        state = self.reporter.kept_history(report.team, report.zone)
        read_at = {k.kpi.id: k.as_of for k in report.kpis if k.cached and k.as_of is not None}
        if state is None or len(read_at) < len(report.kpis):
            self._cards.pop(key, None)
            return None
        version, history_until = state
        now = report.generated_at
        _, _, refresh_function, settings = key
        slotted = team_message(report, refresh_function=refresh_function, settings=settings, slots=True)
        template = _encode(within_limits(slotted))
        parts = tuple(_SLOT.split(template))
        until = min(history_until, changes_at(report, self.reporter.cache_seconds))
        encoded = _encode(within_limits(message))
        zone = ZoneInfo(report.zone)
        time_length = len(_time_text(now.replace(second=0, microsecond=0), zone))
        card = KeptCard(report.team, zone, version, now, until, parts, read_at, time_length)
        if not set(parts[1::2]) <= {"", *read_at} or card.text(now) != encoded:
            self._cards.pop(key, None)  # a text of the card holds the slot characters: made on every request
            return None
        self._cards[key] = card
        return encoded


def changes_at(report: TeamReport, cache_seconds: Mapping[str, float]) -> datetime:
    """The first moment after the report's at which a text of its card (made from stored readings) other than
    its time and "read N s ago" would read differently, or a KPI's reading would be too old to show."""
    now = report.generated_at
    local = now.astimezone(ZoneInfo(report.zone))
    moments = [
        datetime.combine(now.astimezone(UTC).date() + DAY, time(0), UTC),
        datetime.combine(local.date() + DAY, time(0), local.tzinfo),
    ]
    for kpi in report.kpis:
        if kpi.as_of is None:
            continue
        moments.append(kpi.as_of + timedelta(seconds=cache_seconds[kpi.kpi.source]))
        moments.append(kpi.as_of + MINUTE if now - kpi.as_of < MINUTE else _next(now, MINUTE, kpi.as_of))
        if kpi.fetch is not None:
            created = [kpi.fetch.oldest, *(item.created for item in kpi.fetch.items)]
            moments += [_next(now, HOUR, moment) for moment in created if moment is not None]
    return min(moments)


@functools.lru_cache(maxsize=256)
def _time_text(minute: datetime, zone: ZoneInfo) -> str:
    """The card's time for the minute starting at ``minute``, as JSON text writes it (made once a minute)."""
    return json.dumps(local_time(minute, zone))[1:-1]


def _next(now: datetime, step: timedelta, origin: datetime) -> datetime:
    """The first moment after ``now`` a whole number of ``step`` from ``origin``."""
    return origin + ((now - origin) // step + 1) * step


def _encode(message: Message) -> str:
    """``message`` as JSON text, as `bot.cards.message_bytes` measures it."""
    return json.dumps(message, separators=(",", ":"))
