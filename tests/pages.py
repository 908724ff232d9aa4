"""The demo configuration with chart and status settings, and an app on it, for the page tests."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bot.app import create_app
from bot.config import Config, load_config
from bot.demo import seed_history
from bot.services import build_services
from bot.store import Store
from tests.test_web import make_config

SECRET = "chart-secret-for-tests-0123456789"
PUBLIC = "https://scorebot.example.com"


def pages_config(tmp_path: Any, **top: Any) -> Config:
    """The demo config copied to ``tmp_path`` (request verification off), with ``top`` keys set."""
    make_config(tmp_path, audience="123456789012")
    path = tmp_path / "demo.yaml"
    data = yaml.safe_load(path.read_text())
    data["chat"]["verify"] = False
    data.update(top)
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def unverified_app(tmp_path: Any, clock: Any = None, history_at: datetime | None = None, **top: Any) -> Any:
    """The Flask app on `pages_config` with its own SQLite store in ``tmp_path`` (with demo history up to
    ``history_at``, if given)."""
    config = pages_config(tmp_path, **top)
    options = {"clock": clock} if clock else {}
    store = seeded_store(tmp_path, config, history_at) if history_at else f"sqlite:///{tmp_path / 'store.db'}"
    services = build_services(config, store_url=store, **options)
    return create_app(services=services, allow_unverified=True)


_TEMPLATES: dict[tuple[str, str], Path] = {}


def seeded_store(tmp_path: Path, config: Config, now: datetime) -> str:
    """A store URL in ``tmp_path`` holding the demo history as of ``now`` (generated once per config and time)."""
    key = (config.model_dump_json(exclude={"path"}), now.isoformat())
    if key not in _TEMPLATES:
        template = Path(tempfile.mkdtemp(prefix="scorebot-history-")) / "store.db"
        store = Store(f"sqlite:///{template}")
        seed_history(store, config, now)
        store.engine.dispose()
        _TEMPLATES[key] = template
    shutil.copy(_TEMPLATES[key], tmp_path / "store.db")
    return f"sqlite:///{tmp_path / 'store.db'}"
