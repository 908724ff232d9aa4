"""Retention: old readings thinned to one a KPI a day, old outbox, slot and delivery rows deleted, and the
alert tables kept to what alerts still need."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.alerts import NOTICE_PENDING, alert_checks, alert_deliveries, alert_items, alert_notices
from bot.store.changes import bump_all
from bot.store.engine import Database, insert_ignore, to_utc, utc_aware
from bot.store.schema import deliveries, outbox, prune_marks, readings, slot_runs

ALERT_CHECKS_KEPT = timedelta(days=2)
"""How long a check's claim is kept, before the newest check claimed (or now, if earlier): past its check
window (``check_every`` is at most a day) nothing claims that check again, so an older claim only takes room
(96 rows a team a day at ``15m``)."""


class Retention(Database):
    """Deletes what is older than the retention period, a batch at a time."""

    def prune(self, now: datetime, keep_days: int, batch: int) -> dict[str, int]:
        """Retention: thin readings older than ``keep_days`` to each KPI's last one per UTC day, and
        delete outbox, slot and delivery rows older than that; at most ``batch`` rows a table a call.

        Returns how many rows went, by table. Whole UTC days are thinned, oldest first; how far
        that got is kept in ``prune_marks``, so each call only looks at days not done yet.

        Alerts: check claims older than `ALERT_CHECKS_KEPT` go, and notices sent or failed, their deliveries
        and the new items told, older than ``keep_days``. Each KPI's alert state and its transitions stay
        (``alerts TEAM`` shows the last 10; a KPI's transitions grow only when its state changes).
        """
        cutoff = to_utc(now) - timedelta(days=keep_days)
        counts = {"readings": 0, "outbox": 0, "slot_runs": 0, "deliveries": 0}
        with self.engine.begin() as conn:
            counts["readings"] = _thin_readings(conn, utc_midnight(cutoff), batch)
            for table, column in (
                (outbox, outbox.c.created_at),
                (deliveries, deliveries.c.at),
            ):
                oldest = sa.select(table.c.id).where(column < cutoff).order_by(column).limit(batch)
                counts[table.name] = conn.execute(table.delete().where(table.c.id.in_(oldest))).rowcount
            key = sa.tuple_(slot_runs.c.team_id, slot_runs.c.slot_utc)
            old_slots = (
                sa.select(slot_runs.c.team_id, slot_runs.c.slot_utc)
                .where(slot_runs.c.slot_utc < cutoff)
                .order_by(slot_runs.c.slot_utc)
                .limit(batch)
            )
            counts["slot_runs"] = conn.execute(slot_runs.delete().where(key.in_(old_slots))).rowcount
            if counts["readings"] or counts["deliveries"]:  # what cards compare with may have changed
                bump_all(conn)
            counts |= _prune_alerts(conn, to_utc(now), cutoff, batch)
        return counts


def _thin_readings(conn: Connection, until: datetime, batch: int) -> int:
    """Delete, day by day before ``until`` (a UTC midnight), every reading that has a later one of the
    same KPI the same day; at most ``batch`` rows. Advances the ``readings`` prune mark."""
    done = conn.execute(sa.select(prune_marks.c.done_until).where(prune_marks.c.name == "readings")).scalar()
    oldest = conn.execute(sa.select(sa.func.min(readings.c.taken_at)).where(readings.c.taken_at < until)).scalar()
    if oldest is None:
        return 0
    day = max(utc_midnight(utc_aware(oldest)), utc_aware(done) if done else utc_midnight(utc_aware(oldest)))
    deleted = 0
    later = readings.alias("later")
    while day < until and deleted < batch:
        next_day = day + timedelta(days=1)
        superseded = sa.exists().where(
            later.c.team_id == readings.c.team_id,
            later.c.kpi_id == readings.c.kpi_id,
            later.c.taken_at < next_day,
            later.c.taken_at >= readings.c.taken_at,  # a range the index can seek, then the tie on id
            sa.or_(later.c.taken_at > readings.c.taken_at, later.c.id > readings.c.id),
        )
        doomed = (
            sa.select(readings.c.id)
            .where(readings.c.taken_at >= day, readings.c.taken_at < next_day, superseded)
            .limit(batch - deleted)
        )
        deleted += conn.execute(readings.delete().where(readings.c.id.in_(doomed))).rowcount
        if deleted < batch:
            day = next_day
    _upsert_mark(conn, "readings", day)
    return deleted


def _prune_alerts(conn: Connection, now: datetime, cutoff: datetime, batch: int) -> dict[str, int]:
    """Old alert check claims (`ALERT_CHECKS_KEPT`), ended notices, deliveries and items told (``cutoff``)."""
    newest = conn.execute(sa.select(sa.func.max(alert_checks.c.check_at))).scalar()
    checks_until = min(now, utc_aware(newest)) - ALERT_CHECKS_KEPT if newest else now - ALERT_CHECKS_KEPT
    counts = {}
    ended = alert_notices.c.state != NOTICE_PENDING
    for table, column, before, keys, also in (
        (alert_checks, alert_checks.c.check_at, checks_until, ("team_id", "check_at"), None),
        (alert_notices, alert_notices.c.at, cutoff, ("id",), ended),
        (alert_deliveries, alert_deliveries.c.at, cutoff, ("message_id", "target"), None),
        (alert_items, alert_items.c.check_at, cutoff, ("team_id", "item"), None),
    ):
        key = sa.tuple_(*(table.c[name] for name in keys))
        old = sa.select(*(table.c[name] for name in keys)).where(column < before)
        if also is not None:
            old = old.where(also)
        doomed = old.order_by(column).limit(batch)
        counts[table.name] = conn.execute(table.delete().where(key.in_(doomed))).rowcount
    return counts


def _upsert_mark(conn: Connection, name: str, until: datetime) -> None:
    if not insert_ignore(conn, prune_marks, {"name": name, "done_until": until}):
        conn.execute(prune_marks.update().where(prune_marks.c.name == name).values(done_until=until))


def utc_midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(0), UTC)
