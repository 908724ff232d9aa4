"""Scoring is pure: table-driven cases for the index, status, change and sparkline."""

import pytest

from scoring import CategoryLine, KpiRule, Status, index_of, score_kpi, sparkline, worst_status
from scoring.index import judge

LOWER = KpiRule(weights={"Critical": 10, "Minor": 5}, target=20, warning=40, lower_is_better=True)
HIGHER = KpiRule(weights={"Closed": 1}, target=50, warning=30, lower_is_better=False)


@pytest.mark.parametrize(
    ("counts", "index", "status"),
    [
        ({}, 0, Status.GOOD),
        ({"Critical": 1}, 10, Status.GOOD),
        ({"Critical": 2}, 20, Status.GOOD),
        ({"Critical": 2, "Minor": 1}, 25, Status.WARNING),
        ({"Critical": 4}, 40, Status.WARNING),
        ({"Critical": 4, "Minor": 1}, 45, Status.BAD),
        ({"Minor": 10_000}, 50_000, Status.BAD),
    ],
)
def test_lower_is_better(counts, index, status):
    score = score_kpi(counts, LOWER)
    assert (score.index, score.status) == (index, status)


@pytest.mark.parametrize(
    ("closed", "status"),
    [
        (60, Status.GOOD),
        (50, Status.GOOD),
        (49, Status.WARNING),
        (30, Status.WARNING),
        (29, Status.BAD),
        (0, Status.BAD),
    ],
)
def test_higher_is_better(closed, status):
    assert score_kpi({"Closed": closed}, HIGHER).status is status


def test_breakdown_lists_weighted_categories_heaviest_first_then_unweighted():
    score = score_kpi({"Minor": 3, "Critical": 1, "Urgent": 2, "(none)": 4, "Zero": 0}, LOWER)
    assert score.breakdown == (
        CategoryLine("Critical", 1, 10),
        CategoryLine("Minor", 3, 5),
        CategoryLine("(none)", 4, None),
        CategoryLine("Urgent", 2, None),
    )
    assert score.index == 25
    assert [line.category for line in score.unweighted] == ["(none)", "Urgent"]
    assert score.total_count == 10


def test_breakdown_is_heaviest_first_whatever_order_the_weights_are_written_in_ties_by_name():
    rule = KpiRule(weights={"Low": 1, "High-b": 5, "Critical": 10, "High-a": 5}, target=20, warning=40)
    score = score_kpi({"Low": 1, "High-a": 1, "High-b": 1, "Critical": 1}, rule)
    assert [line.category for line in score.breakdown] == ["Critical", "High-a", "High-b", "Low"]


def test_a_category_weighted_zero_adds_nothing_to_the_index():
    rule = KpiRule(weights={"Critical": 10, "Ignored": 0}, target=5, warning=10)
    score = score_kpi({"Critical": 1, "Ignored": 7}, rule)
    assert score.index == 10
    assert score.status is Status.WARNING
    assert CategoryLine("Ignored", 7, 0) in score.breakdown
    assert score.unweighted == ()


def test_a_rule_without_a_direction_counts_lower_as_better():
    rule = KpiRule(weights={"Critical": 10}, target=20, warning=40)
    assert score_kpi({}, rule).status is Status.GOOD
    assert score_kpi({"Critical": 5}, rule).status is Status.BAD


def test_unweighted_categories_do_not_change_the_index():
    assert score_kpi({"Critical": 1, "Surprise": 99}, LOWER).index == 10


@pytest.mark.parametrize(("previous", "change"), [(None, None), (30, -5), (25, 0), (0, 25)])
def test_change_against_previous(previous, change):
    assert score_kpi({"Critical": 2, "Minor": 1}, LOWER, previous=previous).change == change


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ([], ""),
        ([5], ""),
        ([1, 1, 1], "▁▁▁"),
        ([0, 7], "▁█"),
        ([0, 1, 2, 3, 4, 5, 6, 7], "▁▂▃▄▅▆▇█"),
        (list(range(20)), "▁▂▂▃▃▄▄▅▅▆▆▇▇█"),  # the last 14 values: 6 … 19
        ([None, 5, None], ""),
        ([0, None, None, 7], "▁··█"),
        ([None, 3, None, 3], "·▁·▁"),
    ],
)
def test_sparkline(values, line):
    assert sparkline(values) == line
    assert len(sparkline(list(range(30)))) == 14, "two weeks, one point a day"


def test_the_sparkline_draws_the_days_given_with_gaps():
    score = score_kpi({"Critical": 4}, LOWER, previous=0, days=[0, None, 20, 40])
    assert score.sparkline == "▁·▅█"


@pytest.mark.parametrize(("week_ago", "week_change"), [(None, None), (50, -25), (25, 0)])
def test_change_against_a_week_ago(week_ago, week_change):
    score = score_kpi({"Critical": 2, "Minor": 1}, LOWER, previous=20, week_ago=week_ago)
    assert (score.change, score.week_change) == (5, week_change)


def test_judge_at_exact_levels_for_both_directions():
    assert judge(20, LOWER) is Status.GOOD
    assert judge(40, LOWER) is Status.WARNING
    assert judge(50, HIGHER) is Status.GOOD
    assert judge(30, HIGHER) is Status.WARNING


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        ([], Status.GOOD),
        ([Status.GOOD, Status.WARNING], Status.WARNING),
        ([Status.BAD, Status.WARNING, Status.GOOD], Status.BAD),
        ([Status.BAD, Status.UNKNOWN], Status.UNKNOWN),
    ],
)
def test_worst_status(statuses, worst):
    assert worst_status(statuses) is worst


@pytest.mark.parametrize(
    ("milder", "worse"),
    [
        (Status.GOOD, Status.WARNING),
        (Status.WARNING, Status.BAD),
        (Status.BAD, Status.UNKNOWN),
        (Status.GOOD, Status.UNKNOWN),
    ],
)
def test_worst_status_ranks_each_pair_whatever_their_order(milder, worse):
    assert worst_status([milder, worse]) is worse
    assert worst_status([worse, milder]) is worse


@pytest.mark.parametrize(
    "counts",
    [{}, {"Critical": 3}, {"Minor": 7, "Other": 4}, {"Critical": 1, "Minor": 2, "Trivial": 9, "Other": 5}],
)
def test_index_of_is_the_index_score_kpi_gives(counts):
    fractional = KpiRule(weights={"Critical": 0.1, "Minor": 0.7, "Trivial": 0}, target=1, warning=2)
    for rule in (LOWER, HIGHER, fractional):
        assert index_of(counts, rule) == score_kpi(counts, rule).index
    assert index_of({"Critical": 1, "Minor": 2, "Trivial": 9}, fractional) == 0.1 + 0.7 * 2


def test_a_weighted_category_without_items_is_listed_with_zero():
    score = score_kpi({"Critical": 1}, LOWER)
    assert score.breakdown == (CategoryLine("Critical", 1, 10), CategoryLine("Minor", 0, 5))
    assert (score.index, score.total_count) == (10, 1)


def test_each_line_of_the_breakdown_gives_its_part_of_the_index():
    rule = KpiRule(weights={"Critical": 10, "Ignored": 0}, target=5, warning=10)
    score = score_kpi({"Critical": 2, "Ignored": 7, "Surprise": 3}, rule)
    assert [(line.category, line.points) for line in score.breakdown] == [
        ("Critical", 20),
        ("Ignored", 0),  # weighted 0
        ("Surprise", 0),  # unweighted
    ]
    assert sum(line.points for line in score.breakdown) == score.index


def test_the_index_adds_the_heaviest_first_so_a_kpi_at_its_target_is_good():
    """Fractional weights add up differently in different orders (0.1 + 0.2 + 0.3 is 0.6000000000000001;
    0.3 + 0.2 + 0.1 is 0.6). The index adds the breakdown's parts in its order, heaviest first, so a team
    exactly at its target is judged at it, whatever order the categories' names sort in."""
    rule = KpiRule(weights={"a": 0.1, "b": 0.2, "c": 0.3}, target=0.6, warning=1)
    assert index_of({"a": 1, "b": 1, "c": 1}, rule) == 0.6
    score = score_kpi({"a": 1, "b": 1, "c": 1}, rule)
    assert [line.category for line in score.breakdown] == ["c", "b", "a"]
    assert (score.index, score.status) == (0.6, Status.GOOD)
