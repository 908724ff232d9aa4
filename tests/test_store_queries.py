"""How many statements the store runs for a team's card: a fixed number, however many KPIs the team has.

Counted with a SQLAlchemy ``before_cursor_execute`` listener on the store's engine,
on a real SQLite file and the real PostgreSQL server.
"""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import yaml

from bot.config import load_config
from bot.services import build_services
from bot.store import REFRESH, SCORE


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Statements:
    """Counts the statements an engine sends to the database while ``counting`` is on."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: list[str] = []
        self.counting = False
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if self.counting:
            self.seen.append(statement)

    def during(self, action) -> int:
        self.seen.clear()
        self.counting = True
        try:
            action()
        finally:
            self.counting = False
        return len(self.seen)


def kpi(number: int) -> dict:
    return {
        "id": f"k{number}",
        "name": f"KPI {number}",
        "source": "issues",
        "count": {"where": {"status": "Open"}},
        "category": "priority",
        "weights": {"High": 5, "Low": 1},
        "target": 10,
        "warning": 20,
    }


@pytest.fixture
def services(tmp_path, store_url):
    (tmp_path / "issues.csv").write_text("id,priority,status\n1,High,Open\n2,Low,Open\n3,Low,Closed\n")
    config = {
        "chat": {"verify": False},
        "sources": {"issues": {"type": "file", "path": "issues.csv"}},
        "teams": [
            {"id": "one", "name": "One KPI", "schedule": "0 10 * * *", "deliver": [{"type": "log"}], "kpis": [kpi(1)]},
            {
                "id": "many",
                "name": "Twelve KPIs",
                "schedule": "0 10 * * *",
                "deliver": [{"type": "log"}],
                "kpis": [kpi(n) for n in range(12)],
            },
        ],
    }
    (tmp_path / "scorebot.yaml").write_text(yaml.safe_dump(config))
    clock = Clock()
    built = build_services(load_config(tmp_path / "scorebot.yaml"), clock=clock, store_url=store_url)
    yield built, clock
    built.store.engine.dispose()


def test_a_card_costs_the_same_statements_for_one_kpi_and_for_twelve(services):
    services, clock = services
    count = Statements(services.store.engine)
    one, many = services.config.team("one"), services.config.team("many")
    fresh = [count.during(lambda t=team: services.report(t, REFRESH)) for team in (one, many)]
    clock.now += timedelta(seconds=10)
    cached = [count.during(lambda t=team: services.report(t, SCORE, cached=True)) for team in (one, many)]
    assert fresh[0] == fresh[1], f"a fresh card: {fresh[0]} statements for 1 KPI, {fresh[1]} for 12"
    assert cached[0] == cached[1], f"a cached card: {cached[0]} statements for 1 KPI, {cached[1]} for 12"
    assert cached[1] < fresh[1], "a cached card writes nothing"
    assert fresh[1] <= 8
    assert all(kpi.cached for kpi in services.report(many, SCORE, cached=True).kpis)
    assert len(services.store.recent_readings("many", limit=100)) == 12, "one reading a KPI, all stored"
