"""Shared pytest fixtures."""

import os
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from bot.config import CHAT_ISSUER
from tests.tokens import TokenFactory

# --- Request verification: signed tokens and a loopback certificate server ---


@pytest.fixture
def token_factory() -> Iterator[TokenFactory]:
    """A `TokenFactory` whose certificate server is stopped after the test."""
    factory = TokenFactory()
    yield factory
    factory.close()


# --- Stores: a SQLite file, and PostgreSQL in a throwaway schema ---

PG_URL = os.environ.get("SCOREBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""PostgreSQL tests are skipped when this cannot be reached (they fail instead when SCOREBOT_REQUIRE_POSTGRES=1)."""


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    try:
        admin = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at $SCOREBOT_TEST_POSTGRES or the default ({exc.__class__.__name__})"
        if os.environ.get("SCOREBOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and SCOREBOT_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    schema = f"scorebot_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def auth(token_factory: TokenFactory) -> dict[str, str]:
    """An Authorization header with a Chat token for project number 42, signed by the test's key."""
    now = int(time.time())
    return {"Authorization": "Bearer " + token_factory.sign(iss=CHAT_ISSUER, aud="42", iat=now, exp=now + 3600)}
