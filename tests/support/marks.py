"""Marks the unit tests share."""

from __future__ import annotations

import os

import pytest

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make files of others")
