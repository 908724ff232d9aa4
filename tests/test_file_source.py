"""The file source through what a user sees: the index and counts of a team's report and of `check`."""

import json
import re
from datetime import UTC, datetime

import pytest

from bot.__main__ import main
from bot.config import load_config
from bot.errors import ConfigError, SourceDataError
from bot.services import build_services
from bot.sources.base import Deadline, Wanted
from bot.sources.file import FileQuery, FileSettings, FileSource
from bot.store import SCORE
from scoring import CategoryLine

WEIGHTS = {"Critical": 10, "Low": 1, "(none)": 3}


def write_config(tmp_path, issues_name, *, fmt=None, where=None):
    """A config with one team counting ``issues_name`` by priority; returns its path."""
    source = {"type": "file", "path": issues_name} | ({"format": fmt} if fmt else {})
    kpi = {
        "id": "open",
        "name": "Open issues",
        "source": "issues",
        "count": {"where": where if where is not None else {"status": ["Open", "In Progress"]}},
        "category": "priority",
        "weights": WEIGHTS,
        "target": 10,
        "warning": 20,
    }
    config = {
        "chat": {"verify": False},
        "store": f"sqlite:///{tmp_path / 'store.db'}",
        "sources": {"issues": source},
        "teams": [{"id": "team", "name": "Team", "spaces": ["spaces/T"], "kpis": [kpi]}],
    }
    path = tmp_path / "scorebot.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def report(config_path):
    services = build_services(load_config(config_path))
    return services.report(services.config.team("team"), SCORE).kpis[0]


RECORDS = [
    {"id": "1", "status": "Open", "priority": "Critical"},
    {"id": "2", "status": "In Progress", "priority": "Low"},
    {"id": "3", "status": "Closed", "priority": "Critical"},
    {"id": "4", "status": "Open", "priority": ""},
    {"id": "5", "status": "Open", "priority": "  "},
    {"id": "6", "status": "Open", "priority": "Low"},
]


def write_csv(path, records):
    fields = list(records[0])
    path.write_text("\n".join([",".join(fields), *(",".join(r[f] for f in fields) for r in records)]) + "\n")


def test_a_csv_file_is_counted_by_category_blank_values_as_none(tmp_path):
    write_csv(tmp_path / "issues.csv", RECORDS)
    kpi = report(write_config(tmp_path, "issues.csv"))
    assert kpi.stale_reason is None
    assert kpi.score.breakdown == (
        CategoryLine("Critical", 1, 10),
        CategoryLine("(none)", 2, 3),
        CategoryLine("Low", 2, 1),
    )
    assert kpi.score.index == 18


def test_a_json_file_is_counted_like_the_csv(tmp_path):
    (tmp_path / "issues.json").write_text(json.dumps([*RECORDS, {"id": "7", "status": "Open", "priority": None}]))
    kpi = report(write_config(tmp_path, "issues.json"))
    assert kpi.stale_reason is None
    assert kpi.score.breakdown == (
        CategoryLine("Critical", 1, 10),
        CategoryLine("(none)", 3, 3),
        CategoryLine("Low", 2, 1),
    )
    assert kpi.score.index == 21


def test_format_json_reads_a_file_without_the_json_suffix(tmp_path):
    (tmp_path / "issues.txt").write_text(json.dumps(RECORDS))
    assert report(write_config(tmp_path, "issues.txt", fmt="json")).score.index == 18


def test_every_field_of_where_must_match(tmp_path):
    records = [
        {"id": "1", "status": "Open", "team": "a", "priority": "Critical"},
        {"id": "2", "status": "Open", "team": "b", "priority": "Critical"},
        {"id": "3", "status": "Closed", "team": "a", "priority": "Critical"},
    ]
    write_csv(tmp_path / "issues.csv", records)
    kpi = report(write_config(tmp_path, "issues.csv", where={"status": "Open", "team": "a"}))
    assert kpi.score.index == 10


def test_no_where_counts_every_record(tmp_path):
    write_csv(tmp_path / "issues.csv", RECORDS)
    assert report(write_config(tmp_path, "issues.csv", where={})).score.index == 10 + 10 + 2 * 3 + 2 * 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (json.dumps({"id": "1"}), "issues.json must hold a JSON list of records"),
        (
            json.dumps([{"id": "1", "status": "Open", "priority": "Low"}, ["not", "a", "record"]]),
            "issues.json must hold a JSON list of records",
        ),
        ('[{"id": 1,', "issues.json is not valid JSON (line 1)"),
    ],
)
def test_a_json_file_that_is_not_a_list_of_records_is_an_error_not_zero(tmp_path, content, reason):
    (tmp_path / "issues.json").write_text(content)
    kpi = report(write_config(tmp_path, "issues.json"))
    assert kpi.score is None
    assert kpi.stale_reason == reason


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ([{"id": "1", "priority": "Low"}], "issues.json: record 1 has no field 'status'"),
        ([{"id": "1"}], "issues.json: record 1 has no field 'status'"),  # the first field missing is named
        (
            [{"id": "1", "status": "Open", "priority": "Low"}, {"id": "2", "status": "Open"}],
            "issues.json: record 2 has no field 'priority'",
        ),
    ],
)
def test_a_record_without_a_field_the_kpi_needs_is_named(tmp_path, records, reason):
    (tmp_path / "issues.json").write_text(json.dumps(records))
    kpi = report(write_config(tmp_path, "issues.json"))
    assert kpi.score is None
    assert kpi.stale_reason == reason


def test_check_counts_the_records_and_shows_the_index(tmp_path, capsys):
    (tmp_path / "issues.json").write_text(json.dumps(RECORDS))
    assert main(["check", "--config", str(write_config(tmp_path, "issues.json"))]) == 0
    out = capsys.readouterr().out
    assert "ok   source issues: issues.json: 6 records" in out
    assert "ok   team/open (source issues): index 18 (warning); counts (none)=2, Critical=1, Low=2" in out
    assert "plan: read file; 1 calls" in out


def test_check_fails_on_a_missing_file(tmp_path, capsys):
    assert main(["check", "--config", str(write_config(tmp_path, "absent.csv"))]) == 1
    assert "FAIL source issues: cannot read absent.csv" in capsys.readouterr().out


def test_a_csv_header_without_two_needed_columns_names_the_first(tmp_path):
    (tmp_path / "issues.csv").write_text("id,title\n1,Login broken\n")
    kpi = report(write_config(tmp_path, "issues.csv"))
    assert kpi.score is None
    assert kpi.stale_reason.startswith("issues.csv has no column 'status' (its header: id, title)")


def test_where_takes_texts_only(tmp_path):
    write_csv(tmp_path / "issues.csv", RECORDS)
    with pytest.raises(ConfigError, match=r"expected a text or a list of texts, got \['Open', 1\]"):
        load_config(write_config(tmp_path, "issues.csv", where={"status": ["Open", 1]}))


def test_without_a_created_column_nothing_is_counted_as_new(tmp_path):
    write_csv(tmp_path / "issues.csv", RECORDS)
    source = FileSource("issues", FileSettings(type="file", path="issues.csv"), tmp_path)
    since = datetime(2026, 11, 1, tzinfo=UTC)
    result = source.fetch(FileQuery(), "priority", Deadline.after(5), Wanted(since=since))
    assert result.created_since is None
    dated = [{**r, "created": "2026-11-02"} for r in RECORDS]
    write_csv(tmp_path / "issues.csv", dated)
    result = source.fetch(FileQuery(created="created"), "priority", Deadline.after(5), Wanted(since=since))
    assert result.created_since == len(dated)


def test_a_created_value_that_is_not_a_date_is_named_cut_to_40_characters(tmp_path):
    records = [{"id": "1", "status": "Open", "priority": "Low", "created": "sometime " * 10}]
    write_csv(tmp_path / "issues.csv", records)
    source = FileSource("issues", FileSettings(type="file", path="issues.csv"), tmp_path)
    cut = ("sometime " * 10)[:40]
    with pytest.raises(SourceDataError, match=re.escape(f"record 1 has created {cut!r}, not an ISO 8601 date")):
        source.fetch(FileQuery(created="created"), "priority", Deadline.after(5))
