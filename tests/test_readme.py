"""The README's deployment guide and app.yaml say the same thing, and the README's example config is valid."""

import re

import yaml

from bot.config import PACKAGE_DIR, load_config

README = (PACKAGE_DIR / "README.md").read_text(encoding="utf-8")
APP_YAML = (PACKAGE_DIR / "app.yaml").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    level = title.split()[0]
    end = README.find(f"\n{level} ", start + len(title) + 2)
    return README[start : end if end != -1 else None]


def test_the_example_config_loads_and_leads_with_the_add_on_mode(tmp_path):
    [example, *_] = re.findall(r"```yaml\n(.*?)```", section("## Configuration"), re.DOTALL)
    path = tmp_path / "scorebot.yaml"
    path.write_text(example)
    webhook = "https://chat.googleapis.com/v1/spaces/AAAAxxxx/messages?key=K&token=T"

    config = load_config(path, env={"CUSTOMER_WEBHOOK_URL": webhook, "SCOREBOT_CHART_SECRET": "s" * 32})

    assert config.chat.audience_type == "addon"
    assert config.chat.addon_service_account.endswith("@gcp-sa-gsuiteaddons.iam.gserviceaccount.com")
    assert config.chat.audience.startswith("https://")
    assert config.public_url.startswith("https://") and config.charts.secret is not None


def test_app_yaml_puts_the_store_password_where_the_readme_does():
    store_lines = re.findall(r"^\s*#\s*(store: postgresql://\S+)$", APP_YAML, re.MULTILINE)
    assert store_lines, "app.yaml shows no store line"
    assert all(line in section("#### Cloud SQL for PostgreSQL") for line in store_lines)
    assert all("${DB_PASSWORD}" in line for line in store_lines)
    assert "SCOREBOT_STORE" not in yaml.safe_load(APP_YAML)["env_variables"]
    assert not re.search(r"^\s*#?\s*SCOREBOT_STORE:\s*\S+://\S*:\S*@", APP_YAML, re.MULTILINE)


def test_every_cloud_scheduler_command_names_its_location():
    commands = re.findall(r"gcloud scheduler jobs create http[^`]*?(?=\n\n|```)", README, re.DOTALL)
    assert commands
    assert all("--location=" in command for command in commands)
