"""Team settings: each team's overrides of the editable fields of the YAML, their audit trail, and Space links.

- ``team_settings``: one row a team: its overrides (a JSON object, field → value), a ``version`` every save
  checks and raises (a save based on an older version is refused: a *conflict*), who changed it last, when;
- ``settings_audit``: every attempt at a change, applied or not: who, when, the field, old → new (JSON), the
  outcome (``saved``, ``conflict``, ``reset``, ``linked``, ``unlinked``) and the version it was based on;
- ``space_links``: Spaces linked to a team from Chat (``/score link``), beside the YAML's ``spaces``.

The store keeps values as they are given (JSON); `bot.team_settings` validates them before they get here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.engine import Database, insert_ignore, to_utc, utc_aware
from bot.store.schema import metadata

SAVED, CONFLICT, RESET, LINKED, UNLINKED = "saved", "conflict", "reset", "linked", "unlinked"
"""Outcomes of an audited attempt."""
SPACE_FIELD = "space"
"""The audit's field for a Space linked or unlinked."""

team_settings = sa.Table(
    "team_settings",
    metadata,
    sa.Column("team_id", sa.String(40), primary_key=True),
    sa.Column("overrides", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_by", sa.String(320), nullable=False),
)

settings_audit = sa.Table(
    "settings_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("who", sa.String(320), nullable=False),
    sa.Column("field", sa.String(40), nullable=False),
    sa.Column("old", sa.Text),
    sa.Column("new", sa.Text),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_settings_audit_team", "team_id", "id"),
)

space_links = sa.Table(
    "space_links",
    metadata,
    sa.Column("space", sa.String(80), primary_key=True),
    sa.Column("team_id", sa.String(40), nullable=False),
    sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("linked_by", sa.String(320), nullable=False),
)


@dataclass(frozen=True)
class Overrides:
    """A team's stored overrides: field → value, the version a save must name, and the last change."""

    values: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    """0: never saved."""
    changed_at: datetime | None = None
    changed_by: str | None = None


@dataclass(frozen=True)
class SaveResult:
    """What a save did: ``saved`` (the overrides now stored), or not (a conflict: the current ones)."""

    saved: bool
    overrides: Overrides
    changed: tuple[str, ...] = ()
    """The fields whose value the save changed (none on a conflict)."""


@dataclass(frozen=True)
class SettingsChange:
    """One audited attempt: who, when, which field, old → new (None: the YAML's value), and the outcome."""

    team_id: str
    at: datetime
    who: str
    field: str
    old: Any
    new: Any
    outcome: str
    version: int
    """The version the attempt was based on."""


class Settings(Database):
    """Team overrides, their audit trail, and Space links."""

    def team_overrides(self, team_id: str) -> Overrides:
        """The team's overrides (empty at version 0 if it has none)."""
        with self._connect() as conn:
            return _overrides(conn, team_id)

    def all_overrides(self) -> dict[str, Overrides]:
        """Every team's overrides, by team (teams without any left out): one read of a small table."""
        with self._connect() as conn:
            rows = conn.execute(sa.select(team_settings)).all()
        return {row.team_id: _row_overrides(row) for row in rows}

    def save_overrides(
        self, team_id: str, changes: Mapping[str, Any], *, version: int, who: str, at: datetime
    ) -> SaveResult:
        """Apply ``changes`` (field → value; None takes the field back to the YAML's) if the team's overrides
        are still at ``version``; else nothing changes and the result carries the current overrides.

        Of two saves based on one version, exactly one is saved. Every field of the attempt is audited with
        its outcome (``saved`` or ``conflict``); a field given its current value is not a change.
        """
        with self.engine.begin() as conn:
            current = _overrides(conn, team_id)
            changed = {name: value for name, value in changes.items() if current.values.get(name) != value}
            if current.version == version and not changed:
                return SaveResult(True, current)
            values = {k: v for k, v in (current.values | changed).items() if v is not None}
            won = current.version == version and _write(conn, team_id, values, version, who, at)
            if not won:
                latest = _overrides(conn, team_id)
                rows = [(name, latest.values.get(name), value) for name, value in changes.items()]
                _audit(conn, team_id, at, who, rows, CONFLICT, version)
                return SaveResult(False, latest)
            _audit(conn, team_id, at, who, [(k, current.values.get(k), v) for k, v in changed.items()], SAVED, version)
            return SaveResult(True, Overrides(values, version + 1, to_utc(at), who), tuple(changed))

    def reset_overrides(self, team_id: str, field: str | None = None, *, who: str, at: datetime) -> list[str]:
        """Clear the team's override of ``field`` (all of them if None), audited as ``reset``; the fields
        cleared (none if there was nothing to clear)."""
        with self.engine.begin() as conn:
            for _ in range(100):  # a save between the read and the write: read again
                current = _overrides(conn, team_id)
                cleared = [name for name in current.values if field is None or name == field]
                if not cleared:
                    return []
                values = {k: v for k, v in current.values.items() if k not in cleared}
                if _write(conn, team_id, values, current.version, who, at):
                    rows = [(name, current.values[name], None) for name in cleared]
                    _audit(conn, team_id, at, who, rows, RESET, current.version)
                    return cleared
        raise RuntimeError(f"team {team_id}: overrides kept changing while being reset")  # pragma: no cover

    def settings_history(self, team_id: str, limit: int = 50) -> list[SettingsChange]:
        """The team's audited attempts (settings and Space links), newest first."""
        query = (
            sa.select(settings_audit)
            .where(settings_audit.c.team_id == team_id)
            .order_by(settings_audit.c.id.desc())
            .limit(limit)
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [
            SettingsChange(r.team_id, utc_aware(r.at), r.who, r.field, _load(r.old), _load(r.new), r.outcome, r.version)
            for r in rows
        ]

    def link_space(self, space: str, team_id: str, *, who: str, at: datetime) -> str | None:
        """Link ``space`` to the team (audited ``linked``); the team it was linked to before, if another
        (audited ``unlinked`` for that team)."""
        with self.engine.begin() as conn:
            before = _linked(conn, space)
            if before == team_id:
                return None
            if before is not None:
                conn.execute(space_links.delete().where(space_links.c.space == space))
                _audit(conn, before, at, who, [(SPACE_FIELD, space, None)], UNLINKED, 0)
            row = {"space": space, "team_id": team_id, "linked_at": to_utc(at), "linked_by": who}
            if not insert_ignore(conn, space_links, row):  # linked meanwhile by another: this link wins
                conn.execute(space_links.update().where(space_links.c.space == space).values(**row))
            _audit(conn, team_id, at, who, [(SPACE_FIELD, None, space)], LINKED, 0)
            return before

    def unlink_space(self, space: str, *, who: str, at: datetime) -> str | None:
        """Unlink ``space`` (audited ``unlinked``); the team it was linked to, None if it was not."""
        with self.engine.begin() as conn:
            team_id = conn.execute(
                space_links.delete().where(space_links.c.space == space).returning(space_links.c.team_id)
            ).scalar()
            if team_id is not None:
                _audit(conn, team_id, at, who, [(SPACE_FIELD, space, None)], UNLINKED, 0)
            return team_id

    def linked_team(self, space: str) -> str | None:
        """The team ``space`` is linked to from Chat, if any (the YAML's ``spaces`` are not here)."""
        with self._connect() as conn:
            return _linked(conn, space)

    def space_links(self) -> dict[str, str]:
        """Every Space linked from Chat, with its team."""
        with self._connect() as conn:
            rows = conn.execute(sa.select(space_links.c.space, space_links.c.team_id)).all()
        return {row.space: row.team_id for row in rows}


def _overrides(conn: Connection, team_id: str) -> Overrides:
    row = conn.execute(sa.select(team_settings).where(team_settings.c.team_id == team_id)).first()
    return _row_overrides(row) if row else Overrides()


def _row_overrides(row: Any) -> Overrides:
    return Overrides(json.loads(row.overrides), row.version, utc_aware(row.changed_at), row.changed_by)


def _write(conn: Connection, team_id: str, values: dict[str, Any], version: int, who: str, at: datetime) -> bool:
    """Store ``values`` as version ``version + 1`` if the team's row is still at ``version``: whether it was."""
    row = {"overrides": json.dumps(values, sort_keys=True), "changed_at": to_utc(at), "changed_by": who}
    if version == 0:
        return bool(insert_ignore(conn, team_settings, {"team_id": team_id, "version": 1} | row))
    updated = conn.execute(
        team_settings.update()
        .where(team_settings.c.team_id == team_id, team_settings.c.version == version)
        .values(version=version + 1, **row)
    )
    return updated.rowcount == 1


def _audit(
    conn: Connection,
    team_id: str,
    at: datetime,
    who: str,
    rows: list[tuple[str, Any, Any]],
    outcome: str,
    version: int,
) -> None:
    if rows:
        conn.execute(
            settings_audit.insert(),
            [
                {
                    "team_id": team_id,
                    "at": to_utc(at),
                    "who": who,
                    "field": name,
                    "old": _dump(old),
                    "new": _dump(new),
                    "outcome": outcome,
                    "version": version,
                }
                for name, old, new in rows
            ],
        )


def _linked(conn: Connection, space: str) -> str | None:
    return conn.execute(sa.select(space_links.c.team_id).where(space_links.c.space == space)).scalar()


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
