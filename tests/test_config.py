"""Configuration: the demo loads; every kind of mistake names file, key path and problem."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bot.config import DEMO_CONFIG, load_config
from bot.errors import ConfigError
from bot.sources.file import FileQuery

VALID = {
    "chat": {"audience": "1234567890"},
    "sources": {"crm": {"type": "file", "path": "issues.csv"}},
    "teams": [
        {
            "id": "team-a",
            "name": "Team A",
            "spaces": ["spaces/AAA"],
            "kpis": [
                {
                    "id": "open",
                    "name": "Open",
                    "source": "crm",
                    "count": {"where": {"status": "Open"}},
                    "category": "priority",
                    "weights": {"High": 10},
                    "target": 10,
                    "warning": 20,
                }
            ],
        }
    ],
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "scorebot.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def broken(**changes):
    """VALID with the dotted keys in ``changes`` replaced (None deletes)."""
    data = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        key = int(last) if last.isdigit() else last
        if value is None:
            del node[key]
        else:
            node[key] = value
    return data


def test_demo_config_loads_with_its_queries_validated():
    config = load_config(DEMO_CONFIG)
    assert [t.id for t in config.teams] == ["customer", "performance", "security"]
    assert isinstance(config.teams[0].kpis[0].count, FileQuery)
    assert config.team_for_space("spaces/DEMO-SECURITY").id == "security"


def test_valid_config_and_env_substitution(tmp_path):
    data = broken(chat__audience="${PROJECT_NUMBER}")
    config = load_config(write(tmp_path, data), env={"PROJECT_NUMBER": "42"})
    assert config.chat.audience == "42"
    assert config.path == (tmp_path / "scorebot.yaml").resolve()


@pytest.mark.parametrize(
    ("changes", "where", "problem"),
    [
        ({"teams__0__colour": "red"}, "teams[0].colour", "unknown key"),
        ({"teams__0__kpis__0__target": "ten"}, "teams[0].kpis[0].target", "valid number"),
        ({"teams__0__kpis__0__weights": None}, "teams[0].kpis[0].weights", "missing required key"),
        ({"teams__0__kpis__0__source": "nowhere"}, "teams[0].kpis[0].source", "no source named 'nowhere'"),
        ({"teams__0__kpis__0__count": {"filter": "x"}}, "teams[0].kpis[0].count.filter", "unknown key"),
        ({"sources__crm__type": "ftp"}, "sources.crm.type", "unknown source type 'ftp'"),
        ({"sources__crm__path": None}, "sources.crm.path", "missing required key"),
        ({"teams__0__schedule": "every day"}, "teams[0].schedule", "five-field cron"),
        ({"teams__0__timezone": "Mars/Olympus"}, "teams[0].timezone", "unknown IANA time zone"),
        ({"teams__0__spaces": ["AAA"]}, "teams[0].spaces[0]", "'AAA' is not a Space name: write it as spaces/ID"),
        ({"teams__0__schedule": "0 25 * * *"}, "teams[0].schedule", "'25' is not a valid hour (0-23)"),
        ({"teams__0__schedule": "0 9 * * 8"}, "teams[0].schedule", "'8' is not a valid day of week (0-7, sun-sat)"),
        ({"teams__0__schedule": "0 9 * * * *"}, "teams[0].schedule", "not a five-field cron expression (6 fields)"),
        ({"teams__0__id": "Team_A"}, "teams[0].id", "use 1 to 40 lowercase letters, digits and hyphens"),
        ({"teams__0__kpis__0__id": "-open"}, "teams[0].kpis[0].id", "starting with a letter or digit"),
        ({"teams__0__kpis__0__weights": {"High": -10}}, "teams[0].kpis[0].weights.High", "cannot be negative"),
        (
            {"teams__0__kpis__0__count": {"where": {"id": 1}}},
            "teams[0].kpis[0].count.where.id",
            "expected a text or a list of texts, got 1 (quote numbers",
        ),
        ({"teams__0__kpis__0__warning": 5}, "teams[0].kpis[0]", "warning must be >= target"),
        ({"teams__0__deliver": [{"type": "fax"}]}, "teams[0].deliver[0]", "does not match any of the expected tags"),
        ({"teams__0__deliver": [{"type": "webhook"}]}, "teams[0].deliver[0].url", "missing required key"),
        ({"chat__audience": None}, "chat", "audience is required"),
        ({"teams__0__schedule": "0 0 30 2 *"}, "teams[0].schedule", "never fires"),
        (
            {"teams__0__deliver": [{"type": "webhook", "url": "http://chat.example.com/v1/spaces/A/messages"}]},
            "teams[0].deliver[0].url",
            "https:// webhook URL",
        ),
        ({"teams__0__deliver": [{"type": "webhook", "url": "chat.example.com"}]}, "teams[0].deliver[0].url", "https"),
        ({"schedule": {"deadline_seconds": 200, "lease_seconds": 100}}, "schedule", "lease_seconds must be longer"),
        ({"teams__0__name": "x" * 81}, "teams[0].name", "at most 80 characters"),
        ({"teams__0__kpis__0__name": ""}, "teams[0].kpis[0].name", "at least 1 character"),
        ({"teams": []}, "teams", "at least 1 item"),
        ({"sources__crm__cache_seconds": -1}, "sources.crm.cache_seconds", "greater than or equal to 0"),
        ({"sources__crm__cache_seconds": 86400.5}, "sources.crm.cache_seconds", "less than or equal to 86400"),
        ({"sources__crm__max_concurrent": 0}, "sources.crm.max_concurrent", "greater than or equal to 1"),
        ({"sources__crm__max_concurrent": 65}, "sources.crm.max_concurrent", "less than or equal to 64"),
        ({"sources__crm__daily_call_limit": 0}, "sources.crm.daily_call_limit", "greater than or equal to 1"),
    ],
)
def test_mistakes_name_the_key_path(tmp_path, changes, where, problem):
    path = write(tmp_path, broken(**changes))
    with pytest.raises(ConfigError, match=re.escape(f"{where}: ")) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert problem in message
    assert "\n" not in message  # one line, in words (no regex, no pydantic union branches)
    assert "pattern" not in message


def test_missing_environment_variable_is_named(tmp_path):
    path = write(tmp_path, broken(chat__audience="${SCOREBOT_TEST_UNSET}"))
    with pytest.raises(ConfigError, match=r"chat\.audience: environment variable SCOREBOT_TEST_UNSET is not set"):
        load_config(path, env={})


def test_a_space_belongs_to_one_team(tmp_path):
    data = broken()
    data["teams"].append({**data["teams"][0], "id": "team-b"})
    with pytest.raises(ConfigError, match=r"duplicate Space \(a Space belongs to one team\) 'spaces/AAA'"):
        load_config(write(tmp_path, data))


def test_webhook_secrets_never_appear_in_errors(tmp_path):
    url = "http://chat.example.com/v1/spaces/A/messages?key=SECRETKEY&token=SECRETTOKEN"
    with pytest.raises(ConfigError, match=r"teams\[0\]\.deliver\[0\]\.url: must be the Space's https://") as caught:
        load_config(write(tmp_path, broken(teams__0__deliver=[{"type": "webhook", "url": url}])))
    assert "SECRET" not in str(caught.value)


def test_duplicate_team_ids_are_refused(tmp_path):
    data = broken()
    data["teams"].append(data["teams"][0])
    with pytest.raises(ConfigError, match="duplicate team id 'team-a'"):
        load_config(write(tmp_path, data))


@pytest.mark.parametrize(
    ("text", "problem"),
    [("teams: [", "not valid YAML"), ("- a list", "expected a mapping at the top level")],
)
def test_unreadable_files(tmp_path, text, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml")


def test_cli_reports_a_bad_config_without_a_traceback(tmp_path):
    path = write(tmp_path, broken(teams__0__kpis__0__source="nowhere"))
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "teams[0].kpis[0].source: no source named 'nowhere'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_team_has_at_most_twenty_kpis(tmp_path):
    data = broken()
    kpi = data["teams"][0]["kpis"][0]
    data["teams"][0]["kpis"] = [{**kpi, "id": f"k{i}"} for i in range(21)]
    with pytest.raises(ConfigError, match=r"teams\[0\]\.kpis: List should have at most 20 items"):
        load_config(write(tmp_path, data))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("timezone: UTC\nchat: {verify: false}\ntimezone: CET\n", "duplicate key 'timezone' on lines 1 and 3"),
        ("teams:\n  - weights:\n      High: 10\n      High: 5\n", "duplicate key 'High' on lines 3 and 4"),
        ("chat: {verify: false, verify: true}\n", "duplicate key 'verify' twice on line 1"),
    ],
)
def test_duplicate_keys_are_refused_naming_both_lines(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=f"^{re.escape(f'{path}: {problem}')}$"):
        load_config(path)


def test_a_merge_key_may_still_be_overridden(tmp_path):
    data = broken()
    data["teams"][0]["kpis"][0]["warning"] = 30
    text = yaml.safe_dump(data).replace("chat:\n", "defaults: &chat {audience: '1'}\nchat:\n  <<: *chat\n", 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"defaults: unknown key"):  # the override itself is accepted
        load_config(path)


@pytest.mark.parametrize(("cache_seconds", "max_concurrent"), [(0, 1), (86400, 64)])
def test_a_sources_cache_and_concurrency_take_their_documented_bounds(tmp_path, cache_seconds, max_concurrent):
    data = broken(sources__crm__cache_seconds=cache_seconds, sources__crm__max_concurrent=max_concurrent)
    data["sources"]["crm"]["daily_call_limit"] = max_concurrent  # at least 1 call a day
    source = load_config(write(tmp_path, data)).sources["crm"]
    assert (source.cache_seconds, source.max_concurrent) == (cache_seconds, max_concurrent)
    assert source.daily_call_limit == max_concurrent


def test_a_sources_cache_and_concurrency_default_to_the_documented_values(tmp_path):
    source = load_config(write(tmp_path, broken())).sources["crm"]
    assert (source.cache_seconds, source.max_concurrent) == (60, 8)


def test_a_loaded_config_cannot_be_changed_by_the_code_that_reads_it(tmp_path):
    config = load_config(write(tmp_path, broken()))
    with pytest.raises(ValidationError, match="Instance is frozen"):
        config.teams[0].kpis[0].target = 1000
    with pytest.raises(ValidationError, match="Instance is frozen"):
        config.sources["crm"].cache_seconds = 0
    assert config.teams[0].kpis[0].target == 10
