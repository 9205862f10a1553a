"""Fixtures of the cleanup integration tests."""

from __future__ import annotations

import pytest

from tests.support.pruning import own_repository


@pytest.fixture
def repo() -> str:
    """A repository of the test's own (see own_repository)."""
    return own_repository()
