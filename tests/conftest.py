"""Shared pytest fixtures."""

from collections.abc import Iterator

import pytest

from tests.tokens import TokenFactory

# --- Request verification: signed tokens and a loopback certificate server ---


@pytest.fixture
def token_factory() -> Iterator[TokenFactory]:
    """A `TokenFactory` whose certificate server is stopped after the test."""
    factory = TokenFactory()
    yield factory
    factory.close()
