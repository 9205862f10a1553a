"""prune-images' --max-disk and the rule it must have, read before any engine is asked."""

from __future__ import annotations

import pytest

from dockops.core.cleanup.limits import filesystem_bytes, parse_disk_limit, require_a_rule
from dockops.errors import InvalidInput


def test_a_size_is_bytes_whatever_the_filesystem() -> None:
    assert parse_disk_limit("20GB").bytes_on(None) == 20 * 10**9
    assert parse_disk_limit("20GB").bytes_on(10) == 20 * 10**9


def test_a_percentage_is_of_the_engine_filesystem() -> None:
    assert parse_disk_limit("80%").bytes_on(1000) == 800
    assert parse_disk_limit("0%").bytes_on(1000) == 0


def test_a_percentage_needs_the_filesystem_here() -> None:
    with pytest.raises(InvalidInput, match="not on this machine"):
        parse_disk_limit("80%").bytes_on(None)


@pytest.mark.parametrize("text", ["101%", "-5%", "x%", "%", "20XB", "lots"])
def test_bad_limits_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid --max-disk"):
        parse_disk_limit(text)


def test_a_prune_without_a_limiting_rule_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least one of"):
        require_a_rule(None, None, None)
    require_a_rule(0, None, None)
    require_a_rule(None, "7d", None)
    require_a_rule(None, None, "20GB")


def test_filesystem_bytes_measures_a_local_path_only(tmp_path: object) -> None:
    assert (filesystem_bytes(str(tmp_path)) or 0) > 0
    assert filesystem_bytes("/nonexistent/dockops-engine-root") is None
