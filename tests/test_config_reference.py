"""Every configuration key the code accepts is in the reference (docs/configuration.md), so it cannot fall behind."""

import re
import typing
from collections.abc import Iterator

from pydantic import BaseModel

from bot.config import PACKAGE_DIR, Config
from bot.sources import SOURCE_TYPES

REFERENCE = PACKAGE_DIR / "docs" / "configuration.md"
SET_BY_THE_LOADER = {("Config", "path")}
"""Fields the loader fills in itself: a key written there is replaced, so the reference leaves it out."""


def models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation can hold: itself, or inside a union, list, dict or Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from models_in(arg)


def accepted_keys(roots: list[type[BaseModel]]) -> dict[str, set[str]]:
    """Each key a model below ``roots`` accepts (field names and aliases), with the models that take it."""
    keys: dict[str, set[str]] = {}
    todo, seen = list(roots), set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if (model.__name__, name) in SET_BY_THE_LOADER:
                continue
            for key in {name, field.alias, field.validation_alias} - {None}:
                keys.setdefault(str(key), set()).add(model.__name__)
            todo.extend(models_in(field.annotation))
    return keys


def code_models() -> list[type[BaseModel]]:
    """The whole configuration: ``Config``, and each source type's settings and ``count`` models.

    ``sources`` and a KPI's ``count`` are validated by the source type a
    source names, so their models come from ``SOURCE_TYPES``.
    """
    per_type = [model for kind in SOURCE_TYPES.values() for model in (kind.Settings, kind.Query)]
    return [Config, *per_type]


def documented_keys(text: str) -> set[str]:
    """The keys the reference documents: the first cell of a table row, in backticks."""
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE))


def missing_keys(text: str) -> list[str]:
    documented = documented_keys(text)
    keys = accepted_keys(code_models())
    return sorted(f"{key} ({', '.join(sorted(models))})" for key, models in keys.items() if key not in documented)


def test_the_walk_reaches_nested_models_lists_dicts_and_every_source_type():
    keys = accepted_keys(code_models())
    assert {"verify", "keep_days", "iap_keys_url"} <= keys.keys()  # nested models
    assert {"kpis", "top", "weights"} <= keys.keys()  # a list of models, and inside it
    assert {"url", "space", "live", "thread"} <= keys.keys()  # the union of delivery targets
    assert {"access_key", "crm_timezone", "module", "plan", "where", "format", "token"} <= keys.keys()
    assert "path" in keys and "Config" not in keys["path"]


def test_every_configuration_key_is_in_the_reference():
    missing = missing_keys(REFERENCE.read_text(encoding="utf-8"))
    assert not missing, "keys the code accepts but docs/configuration.md does not list: " + ", ".join(missing)


def test_a_key_left_out_of_the_reference_is_named():
    text = REFERENCE.read_text(encoding="utf-8")
    without = re.sub(r"^\| `crm_timezone` \|.*\n", "", text, flags=re.MULTILINE)
    assert without != text
    assert missing_keys(without) == ["crm_timezone (VtigerSettings)"]
