"""Alerts between posts, worked by the tick: each team's check claimed once, judged, stored; notices posted once.

Every tick, after the scheduled posts (a post is never held up by an alert):

1. **Checks.** For each team with an ``alerts`` block, the check its
   ``check_every`` puts ``now`` in is claimed (`Alerts.claim_check`: one
   process wins). The claimed teams' KPIs are read through the same path as
   every other read: shared scans (`Reporter.prefetch`), and a stored reading
   younger than its source's ``cache_seconds`` shown instead of reading again;
   only a fetch writes a reading (origin ``check``). Each KPI's alert is judged
   (`bot.alerts.check.judge`) and the outcome stored in one transaction that
   only commits while the claim's lease holds and no other check moved the
   alert meanwhile.
2. **Notices.** A team's notices due by now (quiet hours hold theirs until
   the window ends) are claimed with a lease, grouped into messages (each
   notice alone in its incident's thread; those quiet hours held, folded into
   one), and posted to every target that does not have the message yet. The
   message id is fixed at the first claim, so a process killed mid-post is
   followed by one that posts the same ``messageId``: the Chat API answers
   "already exists" instead of showing it twice. 429 and 5xx are retried
   within the tick, then the notices are given back for the next tick.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot.alert_cards import AlertNotice, alert_message, new_items_message
from bot.alerts.check import (
    NEW_ITEMS,
    KpiRead,
    alert_of,
    check_at,
    judge,
    message_id_of,
    new_after_of,
    new_items_of,
    notice_rows,
    row_of,
    thread_key,
    transition_rows,
)
from bot.config import ChatApiTarget, Config, DeliveryTarget, LogTarget, TeamConfig, WebhookTarget
from bot.delivery import Delivery, Post, live_message_id, target_key
from bot.errors import DeliveryError, ScorebotError
from bot.reports import ScanShare, TeamReport
from bot.sources import Deadline
from bot.store import NOTICE_FAILED, NOTICE_PENDING, NOTICE_SENT, NoticeRow, Store

log = logging.getLogger(__name__)
CHECK = "check"
"""The origin of readings an alert check fetched."""
Report = Callable[[TeamConfig, Mapping[str, ScanShare] | None, Mapping[str, datetime] | None], TeamReport]
"""Reads a team's KPIs for a check (recorded, the cache allowed), with its part of the shared scans and, per
KPI, the time after which its items of the ``new_items`` categories are new (`bot.reports.Reporter.report`)."""


class NoticesLost(Exception):
    """Another process took the notices over: this one's lease ran out while it was posting them."""


@dataclass(frozen=True)
class AlertOutcome:
    """What a tick did about one team's alerts: ``checked`` (with the notices it raised), ``sent``,
    ``pending`` (given back for a later tick), ``failed``, ``lost`` or ``error``."""

    team_id: str
    state: str
    detail: str | None = None


class AlertRunner:
    """Checks teams' alerts and posts their notices; one per process (the tick's)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        delivery: Delivery,
        report: Report,
        prefetch: Callable[[list[TeamConfig]], dict[str, dict[str, ScanShare]]],
        owner: str,
        *,
        lease_seconds: float,
        concurrency: int = 4,
        teams: Callable[[datetime], list[TeamConfig]] | None = None,
    ) -> None:
        self.config = config
        self._teams = teams
        self.store = store
        self.delivery = delivery
        self.report = report
        self.prefetch = prefetch
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.concurrency = concurrency
        self._clock: Callable[[], datetime] = delivery.clock

    def teams(self, now: datetime) -> list[TeamConfig]:
        """The teams with alerts at ``now`` (as ``teams`` gives them, else the configuration's)."""
        teams = self._teams(now) if self._teams else self.config.teams
        return [team for team in teams if team.alerts is not None]

    def run(self, clock: Callable[[], datetime], deadline: Deadline) -> list[AlertOutcome]:
        """One tick's alert work on the tick's ``clock``: the due checks, then every team's due notices."""
        self._clock = clock
        now = clock()
        teams = self.teams(now)
        if not teams:
            return []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="alerts") as pool:
            claimed = [
                team for team, won in zip(teams, pool.map(lambda t: self._claim(t, now), teams), strict=True) if won
            ]
            scans = self._scans(claimed)
            outcomes = list(
                pool.map(lambda t: self._guarded(t, "check", lambda: self.check(t, now, scans.get(t.id))), claimed)
            )
            outcomes += [o for sent in pool.map(lambda t: self.send(t, clock(), deadline), teams) for o in sent]
        return outcomes

    def check_now(self, team: TeamConfig, step: timedelta, deadline: Deadline) -> list[AlertOutcome]:
        """A check asked for between the scheduled ones: claimed for the ``step`` it falls in (one per team
        and step, whichever process asks), read, judged, and its notices posted; ``coalesced`` if that step's
        check is already claimed."""
        now = self._now()
        when = check_at(now, step)
        if not self._claim(team, now, when):
            return [AlertOutcome(team.id, "coalesced", f"the check of {when:%H:%M} UTC is another's, or unclaimed")]
        checked = self._guarded(team, "check", lambda: self.check(team, now, when=when))
        return [checked, *self.send(team, self._now(), deadline)]

    def _claim(self, team: TeamConfig, now: datetime, when: datetime | None = None) -> bool:
        """Claim the team's check at ``when`` (default: the ``check_every`` step ``now`` falls in); False if
        another process has it or the store is unavailable (logged)."""
        assert team.alerts  # noqa: S101 (only teams with alerts are checked)
        when = when or check_at(now, team.alerts.check_every)
        try:
            return self.store.claim_check(team.id, when, self.owner, now + self.lease)
        except SQLAlchemyError as exc:
            log.error("team %s: alert check not claimed, store unavailable (%s)", team.id, type(exc).__name__)
            return False

    def _scans(self, teams: list[TeamConfig]) -> dict[str, dict[str, ScanShare]]:
        try:
            return self.prefetch(teams) if teams else {}
        except Exception as exc:  # noqa: BLE001 (each team then reads alone)
            log.error("alert checks: shared scans not started: %s", type(exc).__name__)
            return {}

    def _guarded(self, team: TeamConfig, what: str, work: Callable[[], AlertOutcome]) -> AlertOutcome:
        try:
            return work()
        except (ScorebotError, SQLAlchemyError) as exc:
            log.error("team %s: alert %s failed: %s", team.id, what, exc)
            return AlertOutcome(team.id, "error", str(exc))
        except Exception as exc:  # noqa: BLE001 (one team's fault must not stop the others)
            log.error("team %s: alert %s failed: %s", team.id, what, type(exc).__name__)
            return AlertOutcome(team.id, "error", f"unexpected {type(exc).__name__}")

    def check(
        self,
        team: TeamConfig,
        now: datetime,
        scans: Mapping[str, ScanShare] | None = None,
        when: datetime | None = None,
    ) -> AlertOutcome:
        """Read and judge a team whose check this process claimed, and store the outcome (if the claim held).
        ``when`` is the claimed check's time: by default the ``check_every`` step ``now`` falls in."""
        settings, zone = team.alerts, self.config.zone(team)
        assert settings  # noqa: S101 (only teams with alerts are checked)
        rows = self.store.alert_rows(team.id)
        new_after = new_after_of(team, {kpi_id: row.fields.get("read_at") for kpi_id, row in rows.items()})
        report = self.report(team, scans, new_after or None)
        reads = [
            KpiRead(k.kpi.id, k.score.index if k.score else None, k.as_of, k.stale_reason)
            if k.stale_reason is None and k.score is not None
            else KpiRead(k.kpi.id, None, None, k.stale_reason or "no data")
            for k in report.kpis
        ]
        stored = {kpi_id: (alert_of(row.fields), row.fields.get("read_at")) for kpi_id, row in rows.items()}
        when = when or check_at(now, settings.check_every)  # the check's own time: what notices and threads say
        outcomes = judge(team, settings, zone, when, reads, stored)
        items = {k.kpi.id: AlertNotice.items_json(k.fetch.items) if k.fetch else "[]" for k in report.kpis}
        states = [(rows.get(o.kpi_id), o.kpi_id, row_of(o.after, o.read_at)) for o in outcomes]
        transitions = [t for o in outcomes for t in transition_rows(o)]
        notices = [
            n | {"items": items.get(o.kpi_id, "[]")} for o in outcomes for n in notice_rows(team, settings, zone, o)
        ]
        judged = {o.kpi_id for o in outcomes}  # a KPI listing new items is read, never shown from the cache
        found = {
            k.kpi.id: k.fetch.new_items
            for k in report.kpis
            if k.kpi.id in new_after and k.kpi.id in judged and k.fetch and not k.cached and k.stale_reason is None
        }
        new = new_items_of(team, settings, zone, when, found)
        if not self.store.store_check(team.id, when, self.owner, now, states, transitions, notices, new):
            log.error(
                "team %s: alert check %s not stored: its claim ran out or another check came first", team.id, when
            )
            return AlertOutcome(team.id, "lost", "the check's claim ran out, or another check moved an alert first")
        told = [f"{n['kpi_id']} {n['kind']}" for n in notices] + ([f"{len(new.items)} new items"] if new else [])
        kinds = ", ".join(told)
        return AlertOutcome(team.id, "checked", kinds or None)

    def send(self, team: TeamConfig, now: datetime, deadline: Deadline) -> list[AlertOutcome]:
        """Post the team's notices due by ``now`` that no other process holds (each message once per target)."""
        try:
            claimed = self.store.claim_notices(team.id, self.owner, now, now + self.lease, _message_ids)
        except SQLAlchemyError as exc:
            log.error("team %s: alert notices not claimed, store unavailable (%s)", team.id, type(exc).__name__)
            return []
        outcomes = []
        for message_id, group in groupby(sorted(claimed, key=_order), key=lambda n: n.message_id or ""):
            outcomes.append(
                self._guarded(team, "post", functools.partial(self._post, team, message_id, list(group), deadline))
            )
        return outcomes

    def _post(self, team: TeamConfig, message_id: str, notices: list[NoticeRow], deadline: Deadline) -> AlertOutcome:
        ids = [n.id for n in notices]
        now = self._now()
        kpis = {kpi.id: kpi for kpi in team.kpis}
        new_items = [item for n in notices if n.kind == NEW_ITEMS for item in json.loads(n.items or "[]")]
        shown = [_shown(n, kpis) for n in notices if n.kpi_id in kpis]
        if not shown and not new_items:
            self.store.end_notices(ids, self.owner, now, NOTICE_FAILED, "the KPI is no longer configured")
            return AlertOutcome(team.id, NOTICE_FAILED, "the KPI is no longer configured")
        settled = self.store.settled_alert_targets(message_id)
        retryable: list[DeliveryError] = []
        rejected: list[DeliveryError] = []
        zone = self.config.zone(team)
        detail: str | None
        for target in [t for t in team.deliver if target_key(t) not in settled]:
            refresh = None if isinstance(target, WebhookTarget) else self.config.chat.button_function
            if new_items:
                message = new_items_message(team, new_items, zone, now, refresh_function=refresh)
            else:
                message = alert_message(team, shown, zone, now, refresh_function=refresh)
            alone = len(notices) == 1 and not new_items
            thread = _thread(team, notices[0]) if alone and not isinstance(target, LogTarget) else None
            reply_to = _live_card(team, target, notices[0] if alone else None, now, zone)
            post = Post(team.id, notices[0].at, message, message_id, thread, reply_to=reply_to)
            try:
                sent = self.delivery.send(target, post, deadline, lambda: self._keep(ids))
            except NoticesLost as exc:
                log.error("team %s: %s; leaving the notices to the new owner", team.id, exc)
                return AlertOutcome(team.id, "lost", str(exc))
            except DeliveryError as exc:
                (retryable if exc.retryable else rejected).append(exc)
                outcome, detail = ("error" if exc.retryable else "rejected"), str(exc)
                log.warning("team %s alert %s: %s", team.id, message_id, exc)
            else:
                outcome, detail = ("already" if sent.already else "delivered"), None
                log.info("team %s alert %s: %s to %s", team.id, message_id, outcome, target_key(target))
            self.store.record_alert_delivery(team.id, message_id, target_key(target), outcome, self._now(), detail)
        if retryable:
            wait = max((e.retry_after or 0.0 for e in retryable), default=0.0)
            retry_at = self._now() + timedelta(seconds=wait) if wait else None
            detail = "; ".join(map(str, retryable))
            return self._end(team, ids, NOTICE_PENDING, detail, retry_at)
        if rejected:
            return self._end(team, ids, NOTICE_FAILED, "; ".join(map(str, rejected)))
        return self._end(team, ids, NOTICE_SENT, None)

    def _end(
        self, team: TeamConfig, ids: list[str], state: str, detail: str | None, retry_at: datetime | None = None
    ) -> AlertOutcome:
        if not self.store.end_notices(ids, self.owner, self._now(), state, detail, retry_at):
            return AlertOutcome(team.id, "lost", f"claim lost before the notices could be recorded {state}")
        return AlertOutcome(team.id, state, detail)

    def _keep(self, ids: list[str]) -> float:
        """The notices' claim checked and extended before each request; raises `NoticesLost`."""
        if not self.store.renew_notices(ids, self.owner, self._now() + self.lease):
            raise NoticesLost("claim on the notices lost: the lease ran out")
        return self.lease.total_seconds()

    def _now(self) -> datetime:
        return self._clock()


def _message_ids(fresh: list[NoticeRow]) -> dict[str, str]:
    """Message ids for newly claimed notices: each alone, except those quiet hours held (one message of the
    alerts, one of the new items)."""
    ids = {n.id: message_id_of([n.id]) for n in fresh if not n.held}
    for new in (False, True):
        held = [n.id for n in fresh if n.held and (n.kind == NEW_ITEMS) is new]
        ids |= dict.fromkeys(held, message_id_of(held))
    return ids


def _order(notice: NoticeRow) -> tuple[str, datetime, str]:
    return (notice.message_id or "", notice.at, notice.id)


def _live_card(
    team: TeamConfig, target: DeliveryTarget, notice: NoticeRow | None, now: datetime, zone: ZoneInfo
) -> str | None:
    """On a Chat API target with a live card: the message id of the live card whose thread the notices reply
    in (that of the period the incident began in, so an alert and its resolve stay together; for new items
    and folded notices, the current period's)."""
    if not isinstance(target, ChatApiTarget) or target.live == "off":
        return None
    moment = (notice.incident or notice.at) if notice else now
    return live_message_id(team.id, target.live, moment.astimezone(zone))


def _thread(team: TeamConfig, notice: NoticeRow) -> str:
    return thread_key(team.id, notice.kpi_id, notice.incident)


def _shown(notice: NoticeRow, kpis: Mapping[str, object]) -> AlertNotice:
    fired = timedelta(seconds=notice.fired_seconds) if notice.fired_seconds is not None else None
    items = tuple(json.loads(notice.items or "[]"))
    return AlertNotice(
        notice.kind,
        kpis[notice.kpi_id],  # type: ignore[arg-type]
        notice.at,
        notice.level,
        notice.index_value,
        notice.incident,
        fired,
        notice.reason,
        notice.came_from,
        items,
    )
