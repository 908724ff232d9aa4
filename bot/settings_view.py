"""The teams as one process runs them: each team's YAML block with its stored overrides, read from the store
at most every `CACHE_SECONDS` (the scheduler and alerts read afresh at every tick)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.config import Config, TeamConfig
from bot.store import Overrides, Store
from bot.team_settings import TeamSettings, effective_team

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
"""How long a process (for `/score` and Refresh) keeps the teams' overrides before reading them again; the
scheduler and alerts read them fresh at every tick."""


class SettingsView:
    """The effective teams for one process, read from the store at most every ``cache_seconds`` (``fresh``:
    read now, as the scheduler does at every tick)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.store, self.cache_seconds, self._clock = config, store, cache_seconds, clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._teams: dict[str, TeamSettings] = {}
        self._links: dict[str, str] = {}

    def teams(self, *, fresh: bool = False) -> list[TeamSettings]:
        """Every team of the configuration, effective, in configuration order."""
        teams = self._snapshot(fresh)[0]
        return [teams[t.id] for t in self.config.teams]

    def team(self, team_id: str, *, fresh: bool = False) -> TeamSettings | None:
        """The team with this id, effective, if the configuration has it."""
        return self._snapshot(fresh)[0].get(team_id)

    def team_for_space(self, space: str | None, *, fresh: bool = False) -> TeamSettings | None:
        """The team of a Space: the YAML's ``spaces`` first, then the Spaces linked from Chat."""
        teams, links = self._snapshot(fresh)
        given = self.config.team_for_space(space)
        team_id = given.id if given else links.get(space or "")
        return teams.get(team_id) if team_id else None

    def forget(self) -> None:
        """Drop what was read: the next call reads the store (after this process saved or linked)."""
        with self._lock:
            self._read_at = None

    def _effective(self, team: TeamConfig, overrides: Overrides) -> TeamSettings:
        """The team's effective settings, built again only when its overrides' version moved (every save and
        reset moves it): a tick's read costs one query, not a check of every team's values."""
        kept = self._teams.get(team.id)
        if kept is not None and kept.overrides.version == overrides.version:
            return kept
        return effective_team(self.config, team, overrides)

    def _snapshot(self, fresh: bool) -> tuple[dict[str, TeamSettings], dict[str, str]]:
        with self._lock:
            now = self._clock()
            if fresh or self._read_at is None or now - self._read_at >= self.cache_seconds:
                with self.store.one_connection():
                    stored, links = self.store.all_overrides(), self.store.space_links()
                self._teams = {t.id: self._effective(t, stored.get(t.id, Overrides())) for t in self.config.teams}
                self._links = links
                self._read_at = now
            return self._teams, self._links


def warn_ignored(view: SettingsView) -> list[str]:
    """Log one warning per stored override that is ignored (at start: the view's first read); returns them."""
    lines = []
    for current in view.teams(fresh=True):
        for name, why in current.ignored:
            lines.append(f"team {current.yaml.id}: its {name} override is ignored: {why}")
            log.warning("%s", lines[-1])
    return lines
