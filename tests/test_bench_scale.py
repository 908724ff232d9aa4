"""The scale benchmark's yardstick: its minimum calls are what the Vtiger source really spends, plan by plan."""

from datetime import UTC, datetime

import pytest

from bench.scale_data import KPIS, MODULE, PAGE, StandIn, generate, kpi_minimum
from bot.sources import Deadline
from bot.sources.base import Wanted
from bot.sources.vtiger import VtigerQuery, VtigerSource
from bot.sources.vtiger_settings import VtigerSettings
from tests.fakes.vtiger import FakeVtiger


@pytest.fixture(scope="module")
def teams():
    """Small teams, some with hundreds of records (counting is cheaper there), some with odd categories."""
    generated = generate(12, seed=2, big_share=0.25)
    assert any(len(t.open_records()) > 9 * PAGE for t in generated)
    assert any(r["ticketpriorities"] in {"", "Blocker"} for t in generated for r in t.open_records())
    return generated


def source_on(fake: FakeVtiger) -> VtigerSource:
    settings = VtigerSettings.model_validate(
        {"type": "vtiger", "url": fake.url, "username": fake.username, "access_key": fake.access_key}
    )
    return VtigerSource("crm", settings, None)  # type: ignore[arg-type]


def data_calls(source: VtigerSource, fake: FakeVtiger, query: VtigerQuery, category: str, wanted: Wanted) -> int:
    before = fake.count("query")
    source.fetch(query, category, Deadline.after(30), wanted)
    return fake.count("query") - before


@pytest.mark.parametrize("posted", [False, True], ids=["first-post", "posted-before"])
def test_minimum_is_the_cheaper_of_the_two_plans_the_source_runs(teams, posted):
    since = datetime(2026, 8, 1, tzinfo=UTC) if posted else None
    fake = StandIn(teams, delay=0)
    source = source_on(fake)
    try:
        for team in teams:
            for field, weights in KPIS.values():
                wanted = Wanted(top=3, weights=weights, since=since, oldest=True)
                queries = {
                    plan: VtigerQuery(module=MODULE, filter=team.filter(), plan=plan) for plan in ("page", "count")
                }
                plans = {plan: data_calls(source, fake, query, field, wanted) for plan, query in queries.items()}
                assert kpi_minimum(team.open_records(), field, posted) == min(plans.values()), (team.id, plans)
    finally:
        source.close()
        fake.close()


def test_minimum_by_hand():
    high = [{"ticketpriorities": "High"}] * 950
    assert kpi_minimum(high, "ticketpriorities", since=False) == 6  # count(*), 4 values, top items
    assert kpi_minimum(high, "ticketpriorities", since=True) == 7  # and the new ones
    odd = high + [{"ticketpriorities": ""}] * 3 + [{"ticketpriorities": "HIGH "}]
    assert kpi_minimum(odd, "ticketpriorities", since=True) == 8  # one page of the 3 others
    assert kpi_minimum(high[:250], "ticketpriorities", since=True) == 3  # pages
    assert kpi_minimum(high[:700], "ticketpriorities", since=False) == 6  # count(*), 4 values, the oldest item
    assert kpi_minimum([], "ticketpriorities", since=True) == 1


def test_the_stand_in_answers_as_the_plain_fake_does(teams):
    plain, indexed = FakeVtiger(), StandIn(teams, delay=0)
    for team in teams:
        for record in team.records:
            plain.add(MODULE, 1, **record)
    sources = [source_on(plain), source_on(indexed)]
    try:
        for team in teams:
            for field, weights in KPIS.values():
                wanted = Wanted(top=3, weights=weights, oldest=True)
                for plan in ("page", "count"):
                    query = VtigerQuery(module=MODULE, filter=team.filter(), plan=plan, title="ticket_title")
                    first, second = (s.fetch(query, field, Deadline.after(30), wanted) for s in sources)
                    assert (first.counts, first.calls) == (second.counts, second.calls)
                    assert [(i.title, i.category, i.created) for i in first.items] == [
                        (i.title, i.category, i.created) for i in second.items
                    ]
                    assert sum(first.counts.values()) == len(team.open_records())
    finally:
        for source in sources:
            source.close()
        plain.close()
        indexed.close()
