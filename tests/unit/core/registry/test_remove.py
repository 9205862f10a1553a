"""Retention planning for `registry prune` and the order of deletes (core/registry/remove.py):
pure, no registry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dockops.core.registry.remove import TagAge, plan_deletes, plan_retention

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def _age(tag: str, days: float | None, digest: str | None = None) -> TagAge:
    created = None if days is None else (NOW - timedelta(days=days)).isoformat()
    return TagAge(tag, digest or f"sha256:{tag}", created)


def _split(ages: list[TagAge], **kw: object) -> tuple[list[str], dict[str, str]]:
    removed, kept = plan_retention(ages, now=NOW, **kw)  # type: ignore[arg-type]
    return sorted(a.tag for a in removed), {a.tag: str(a.reason) for a in kept}


def test_keep_newest_n() -> None:
    ages = [_age(f"v{i}", i) for i in range(5)]
    removed, kept = _split(ages, keep=2, older_than=None)
    assert removed == ["v2", "v3", "v4"]
    assert kept == {"v0": "among the newest 2", "v1": "among the newest 2"}


def test_keep_zero_and_older_than_together() -> None:
    ages = [_age(f"v{i}", i * 10) for i in range(4)]  # 0, 10, 20, 30 days
    removed, kept = _split(ages, keep=1, older_than=timedelta(days=15))
    assert removed == ["v2", "v3"] and kept["v1"] == "newer than --older-than"
    assert _split(ages, keep=0, older_than=None)[0] == ["v0", "v1", "v2", "v3"]


def test_shared_digest_with_a_kept_tag_is_never_deleted() -> None:
    ages = [_age("new", 1), _age("old", 50, digest="sha256:new"), _age("older", 60)]
    removed, kept = _split(ages, keep=1, older_than=None)
    assert removed == ["older"]
    assert kept["old"] == "shares its digest with kept tag new"


def test_an_index_is_one_tag_and_keeps_what_it_references() -> None:
    index = TagAge("multi", "sha256:i", (NOW - timedelta(days=1)).isoformat(), None, ("a", "b"))
    image_a = _age("multi-amd64", 40, digest="a")  # older than --keep reaches, but referenced
    removed, kept = _split([index, image_a, _age("old", 50)], keep=1, older_than=None)
    assert removed == ["old"]
    assert kept == {"multi": "among the newest 1", "multi-amd64": "an image of kept index multi"}


def test_deleting_indexes_first_then_their_unheld_images() -> None:
    outer = TagAge("outer", "sha256:o", None, None, ("sha256:inner", "c1", "c2", "shared"))
    inner = TagAge("inner", "sha256:inner", None, None, ("c1", "c2"))
    image = TagAge("image", "c1", None)  # a removed tag naming one of the images
    kept = [TagAge("keep", "sha256:k", None, None, ("shared",)), TagAge("tagged", "c2", None)]
    digests, children = plan_deletes([image, inner, outer], kept)
    # Deleting in this order, a failure midway never leaves an index without its images.
    assert digests == ("sha256:o", "sha256:inner", "c1")
    assert children == ()  # c1 is a removed tag's own; c2 is tagged and shared is referenced
    digests, children = plan_deletes([outer], [])
    assert digests == ("sha256:o",) and children == ("sha256:inner", "c1", "c2", "shared")


def test_tags_without_a_created_time_are_kept() -> None:
    ages = [_age("dated", 100), _age("undated", None), TagAge("bad", "sha256:b", "yesterday")]
    removed, kept = _split(ages, keep=0, older_than=None)
    assert removed == ["dated"]
    assert kept == {"undated": "no created time", "bad": "no created time"}
