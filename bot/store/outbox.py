"""The outbox: messages the ``log`` target "posted" (the demo's Space)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bot.store.engine import Database, to_utc, utc_aware
from bot.store.records import OutboxEntry
from bot.store.schema import outbox


class Outbox(Database):
    """Messages of the ``log`` target, newest first."""

    def add_outbox(self, team_id: str, slot: datetime, message: dict[str, Any], created_at: datetime) -> None:
        """Keep a message the ``log`` target posted."""
        with self.engine.begin() as conn:
            conn.execute(
                outbox.insert().values(
                    team_id=team_id, slot_utc=to_utc(slot), created_at=to_utc(created_at), message=json.dumps(message)
                )
            )

    def outbox(self, team_id: str | None = None, limit: int = 50) -> list[OutboxEntry]:
        """Messages in the outbox (of one team, if given), newest first."""
        query = sa.select(outbox)
        if team_id is not None:
            query = query.where(outbox.c.team_id == team_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).all()
        return [
            OutboxEntry(r.team_id, utc_aware(r.slot_utc), utc_aware(r.created_at), json.loads(r.message)) for r in rows
        ]
