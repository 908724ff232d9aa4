"""Retention's boundary: what the tick prunes at ``history.keep_days``, a day either side of it.

Rows are placed just inside and just outside the cutoff (``keep_days`` before the tick's clock), so
moving the cutoff by a day in either direction, or making it inclusive, fails here. Real SQLite files
and PostgreSQL, through the tick's own retention step.
"""

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot.config import load_config
from bot.schedule.tick import Scheduler
from bot.services import build_services
from bot.store import SCORE, NewItems, Reading
from tests.fakes.chat import FakeChat, write_config

KEEP_DAYS = 10
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=KEEP_DAYS)  # 2026-11-10 12:00: scheduler rows before it go
THIN_UNTIL = datetime(2026, 11, 10, tzinfo=UTC)  # the cutoff's UTC midnight: readings of earlier days are thinned
NO_ALERT_ROWS = {"alert_checks": 0, "alert_notices": 0, "alert_deliveries": 0, "alert_items": 0}
CHECKS_KEPT_FROM = NOW - timedelta(days=2)  # check claims before it go (ALERT_CHECKS_KEPT)


@pytest.fixture
def fake():
    chat = FakeChat()
    yield chat
    chat.close()


def reading(at: datetime, high: int) -> Reading:
    return Reading("alpha", "open", at, SCORE, {"High": high}, 5.0 * high)


def test_the_tick_prunes_exactly_keep_days_back(tmp_path, fake, store_url):
    path = write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, store=store_url)
    data = yaml.safe_load(path.read_text())
    data["history"] = {"keep_days": KEEP_DAYS}
    data["teams"][0]["schedule"] = None  # the tick only prunes
    path.write_text(yaml.safe_dump(data))
    services = build_services(load_config(path), clock=lambda: NOW)
    store = services.store
    try:
        # Two readings on each of the last thinned day and the first day kept in full, and the latest.
        days = (THIN_UNTIL - timedelta(days=1), THIN_UNTIL)
        store.add_readings([reading(day + timedelta(hours=h), h) for day in days for h in (1, 2)])
        store.add_readings([reading(NOW - timedelta(minutes=1), 9)])
        # Scheduler rows a second before the cutoff (removed) and at the cutoff (kept).
        for slot in (CUTOFF - timedelta(seconds=1), CUTOFF):
            store.claim("alpha", slot, "me", slot, slot + timedelta(minutes=3))
            store.finish("alpha", slot, "me", "delivered", slot, None)
            store.record_delivery("alpha", slot, "log", "delivered", slot)
            store.add_outbox("alpha", slot, {"text": "posted"}, slot)

        pruned = Scheduler(services).prune()

        assert pruned == {"readings": 1, "outbox": 1, "slot_runs": 1, "deliveries": 1} | NO_ALERT_ROWS
        kept = sorted(r.taken_at for r in store.recent_readings("alpha", limit=100))
        assert kept == [
            days[0] + timedelta(hours=2),  # the thinned day keeps its last reading
            days[1] + timedelta(hours=1),  # the cutoff's own day is kept in full
            days[1] + timedelta(hours=2),
            NOW - timedelta(minutes=1),
        ]
        assert [r.slot for r in store.slot_runs("alpha")] == [CUTOFF]
        assert [d.slot for d in store.deliveries("alpha")] == [CUTOFF]
        assert [e.slot for e in store.outbox("alpha")] == [CUTOFF]
    finally:
        store.engine.dispose()


def notice(kind: str, at: datetime) -> dict[str, object]:
    return {"id": f"alpha/open/{kind}/{at:%Y%m%dT%H%M%S}", "kpi_id": "open", "kind": kind, "at": at}


def test_the_alert_tables_keep_what_alerts_need(tmp_path, fake, store_url):
    path = write_config(tmp_path, fake, {"alpha": [{"type": "log"}]}, store=store_url)
    data = yaml.safe_load(path.read_text())
    data["history"] = {"keep_days": KEEP_DAYS}
    data["teams"][0]["schedule"] = None
    path.write_text(yaml.safe_dump(data))
    services = build_services(load_config(path), clock=lambda: NOW)
    store = services.store
    try:
        # A claimed and stored check at each moment; the early ones carry 12 transitions of KPI "open",
        # a notice sent (and its delivery), one still pending, and a new item told.
        moments = [CUTOFF - timedelta(seconds=1), CUTOFF, CHECKS_KEPT_FROM - timedelta(seconds=1), CHECKS_KEPT_FROM]
        for n, at in enumerate(moments):
            assert store.claim_check("alpha", at, "me", at + timedelta(minutes=5))
            moves = [
                {
                    "kpi_id": "open",
                    "at": at + timedelta(seconds=s),
                    "before": "normal",
                    "after": "pending",
                    "move": "worse",
                }
                for s in range(3)
            ]
            notices = [notice(k, at) | {"release_at": at, "held": False} for k in ("fire", "remind")]
            items = NewItems(
                {f"item-{n}": {"title": "Down", "created": None, "link": None}},
                notice("new", at) | {"release_at": at, "held": False},
            )
            assert store.store_check("alpha", at, "me", at, [], moves, notices, items)
            claimed = store.claim_notices(
                "alpha",
                "me",
                at,
                at + timedelta(minutes=5),
                lambda fresh, n=n: {row.id: f"client-alert-{n}-{row.kind}" for row in fresh},
            )
            sent = [row.id for row in claimed if row.kind != "remind"]  # the reminder stays pending
            assert store.end_notices(sent, "me", at, "sent", None)
            store.record_alert_delivery("alpha", f"client-alert-{n}-fire", "log", "delivered", at, None)

        scheduler = Scheduler(services)
        pruned = scheduler.prune()

        assert {k: v for k, v in pruned.items() if k.startswith("alert")} == {
            "alert_checks": 2,  # two days before the newest claim (a tick run as of an earlier time keeps its own)
            "alert_notices": 2,  # the ended notices before the cutoff; the pending reminder stays
            "alert_deliveries": 1,
            "alert_items": 1,
        }
        assert store.claim_check("alpha", NOW, "me", NOW + timedelta(minutes=5))  # the check of now
        assert scheduler.prune()["alert_checks"] == 1  # now every claim older than two days has gone
        assert not store.claim_check("alpha", CHECKS_KEPT_FROM, "other", NOW)  # its claim is still there
        assert len(store.transitions("alpha", "open", limit=100)) == 12  # transitions are kept
        assert [t.at for t in store.transitions("alpha", "open")][:1] == [CHECKS_KEPT_FROM + timedelta(seconds=2)]
        left = {(n.kind, n.at) for n in store.notices("alpha")}
        assert ("remind", CUTOFF - timedelta(seconds=1)) in left
        assert ("fire", CUTOFF - timedelta(seconds=1)) not in left and ("fire", CUTOFF) in left
        assert [m for m, _, _ in store.alert_deliveries("alpha")] == [f"client-alert-{n}-fire" for n in (1, 2, 3)]
    finally:
        store.engine.dispose()
