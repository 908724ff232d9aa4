"""The README and docs/ say what the code does: examples load, links resolve, the deploy guide matches app.yaml."""

import re

import pathspec
import pytest
import yaml

from bot.config import PACKAGE_DIR, load_config

README = PACKAGE_DIR / "README.md"
DOCS = PACKAGE_DIR / "docs"
APP_YAML = (PACKAGE_DIR / "app.yaml").read_text(encoding="utf-8")
WEBHOOK = "https://chat.googleapis.com/v1/spaces/AAAAxxxx/messages?key=K&token=T"


def text(name: str) -> str:
    """A page of the docs (``README.md`` or a file in ``docs/``)."""
    path = README if name == "README.md" else DOCS / name
    return path.read_text(encoding="utf-8")


def section(page: str, title: str) -> str:
    """The section under the heading ``title`` (with its ``#``s), up to the next heading of its level or above."""
    lines = page.splitlines(keepends=True)
    start = lines.index(f"{title}\n")
    level = len(title.split()[0])
    fenced = False
    for end in range(start + 1, len(lines)):
        fenced ^= lines[end].startswith("```")
        heading = re.match(r"(#+) ", lines[end])
        if heading and not fenced and len(heading.group(1)) <= level:
            return "".join(lines[start:end])
    return "".join(lines[start:])


def first_yaml(page: str) -> str:
    [example, *_] = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    return example


@pytest.mark.parametrize(
    ("page", "title"), [("README.md", "## Configuration"), ("configuration.md", "# Configuration")]
)
def test_the_example_config_loads_and_leads_with_the_add_on_mode(tmp_path, page, title):
    path = tmp_path / "scorebot.yaml"
    path.write_text(first_yaml(section(text(page), title)))

    config = load_config(path, env={"CUSTOMER_WEBHOOK_URL": WEBHOOK, "SCOREBOT_CHART_SECRET": "s" * 32})

    assert config.chat.audience_type == "addon"
    assert config.chat.addon_service_account.endswith("@gcp-sa-gsuiteaddons.iam.gserviceaccount.com")
    assert config.chat.audience.startswith("https://")
    assert config.public_url.startswith("https://") and config.charts.secret is not None


def test_the_readme_quick_start_is_the_two_scripts():
    quick_start = section(text("README.md"), "## Quick start")
    [commands, *_] = re.findall(r"```sh\n(.*?)```", quick_start, re.DOTALL)
    assert [line.split()[0] for line in commands.splitlines()] == ["scripts/demo", "scripts/test"]
    assert all((PACKAGE_DIR / script).is_file() for script in ("scripts/demo", "scripts/test"))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_pages_reaches_a_page_and_heading():
    pages = [README, *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]*\.md)?(#[^)\s]+)?\)", page.read_text(encoding="utf-8")):
            file, fragment = target
            if not file and not fragment:
                continue
            linked = (page.parent / file).resolve() if file else page
            if not linked.is_file():
                broken.append(f"{page.name}: {file}")
                continue
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
            if fragment and fragment[1:] not in {anchor(h) for h in headings}:
                broken.append(f"{page.name}: {file}{fragment}")
    assert len(pages) > 5
    assert not broken, broken


def test_the_readme_links_every_page_of_the_docs():
    linked = set(re.findall(r"\(docs/([\w-]+\.md)", text("README.md")))
    assert linked == {path.name for path in DOCS.glob("*.md")}


def test_app_yaml_puts_the_store_password_where_the_deploy_guide_does():
    store_lines = re.findall(r"^\s*#\s*(store: postgresql://\S+)$", APP_YAML, re.MULTILINE)
    assert store_lines, "app.yaml shows no store line"
    assert all(line in section(text("deployment.md"), "### Cloud SQL for PostgreSQL") for line in store_lines)
    assert all("${DB_PASSWORD}" in line for line in store_lines)
    assert "SCOREBOT_STORE" not in yaml.safe_load(APP_YAML)["env_variables"]
    assert not re.search(r"^\s*#?\s*SCOREBOT_STORE:\s*\S+://\S*:\S*@", APP_YAML, re.MULTILINE)


def test_every_cloud_scheduler_command_names_its_location():
    pages = "\n".join(path.read_text(encoding="utf-8") for path in [README, *DOCS.glob("*.md")])
    commands = re.findall(r"gcloud scheduler jobs create http[^`]*?(?=\n\n|```)", pages, re.DOTALL)
    assert commands
    assert all("--location=" in command for command in commands)


MADE_LATER = {"config/demo.db", "config/production.yaml", "config/chat-key.json"}
"""Files the docs name that the demo or the deployer creates."""


def test_the_docs_name_no_file_that_is_not_there():
    """Every repository path a page names in backticks (``bench/x.py``, ``scripts/y``) exists."""
    missing = []
    for page in [README, *DOCS.glob("*.md")]:
        for name in re.findall(r"`((?:bench|scripts|tests|config|bot|handlers|scoring)/[\w./-]+)`", page.read_text()):
            if name not in MADE_LATER and not (PACKAGE_DIR / name.rstrip("/")).exists():
                missing.append(f"{page.name}: {name}")
    assert not missing, missing


def test_gcloudignore_uploads_what_app_yaml_needs_and_never_the_virtualenv_or_tests():
    """``.gcloudignore`` (gitignore syntax) keeps the app, its requirements and production config; drops the rest."""
    spec = pathspec.GitIgnoreSpec.from_lines((PACKAGE_DIR / ".gcloudignore").read_text(encoding="utf-8").splitlines())
    entrypoint = yaml.safe_load(APP_YAML)["entrypoint"]
    assert entrypoint.startswith("python main.py ") and "SCOREBOT_CONFIG: config/production.yaml" in APP_YAML
    tracked = [
        path.relative_to(PACKAGE_DIR).as_posix()
        for top in ("bot", "handlers", "scoring")
        for path in (PACKAGE_DIR / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    needed = ["app.yaml", "cron.yaml", "main.py", "requirements.txt", "config/production.yaml", "config/chat-key.json"]
    assert [path for path in needed + tracked if spec.match_file(path)] == []
    assert any(path.startswith("bot/pages/templates/") for path in tracked)

    left_out = [
        ".venv",
        ".venv/lib/python3.12/site-packages/flask/app.py",
        "tests/test_docs.py",
        "tests/fakes/__init__.py",
        "bench/scale.py",
        "mutants/bot/cards.py",
        "scripts/demo",
        "docs/deployment.md",
        ".git/HEAD",
        "bot/__pycache__/config.cpython-312.pyc",
        "scorebot.db",
        "config/demo.db",
        "requirements-dev.txt",
    ]
    assert [path for path in left_out if not spec.match_file(path)] == []
