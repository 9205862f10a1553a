"""Planning of prune-images: each rule with its reason, last use from every source, --max-disk
stopping exactly when enough is freed, and properties over random engine states."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockops.core.cleanup.dangling import LabelRule
from dockops.core.cleanup.retention import (
    IN_USE,
    KEEP_LAST,
    KEPT_GLOB,
    KEPT_LABEL,
    RECENTLY_USED,
    WITHIN_BUDGET,
    ContainerUse,
    EngineSnapshot,
    LastUse,
    RetentionPlan,
    RetentionRules,
    TaggedImage,
    last_uses,
    matches,
    plan_retention,
    repository_of,
)
from dockops.errors import InvalidInput

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = 86400.0


def image(name: str, *tags: str, days: float = 10, size: int = 100, **kw: object) -> TaggedImage:
    return TaggedImage(
        id=f"sha256:{name}",
        tags=tags,
        size=size,
        created=NOW - timedelta(days=days),
        **kw,  # type: ignore[arg-type]
    )


def snap(*images: TaggedImage, **kw: object) -> EngineSnapshot:
    return EngineSnapshot(images=images, now=NOW, **kw)  # type: ignore[arg-type]


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def recorded(when: datetime) -> LastUse:
    return LastUse(when=when, source="usage record")


def removed(plan: RetentionPlan) -> dict[str, tuple[tuple[str, ...], bool]]:
    return {e.image.removeprefix("sha256:"): (e.tags, e.delete) for e in plan.remove}


def kept(plan: RetentionPlan) -> dict[str, str]:
    return {k.reference: k.kind for k in plan.kept}


def test_keep_last_per_repository_ranks_images_and_untags_one_in_two_repositories() -> None:
    plan = plan_retention(
        snap(
            image("a3", "app:3", "app:latest", days=1),
            image("a2", "app:2", days=2),
            # Newest of web, oldest of app: web keeps it, app lets its tag go.
            image("a1", "app:1", "web:1", days=3),
            image("w0", "web:0", days=9),
        ),
        RetentionRules(keep_last=1),
    )
    # Tags of one image share its last use: app:3 and app:latest are one place, not two.
    assert removed(plan) == {
        "w0": (("web:0",), True),
        "a2": (("app:2",), True),
        "a1": (("app:1",), False),
    }
    assert kept(plan) == {"app:3": KEEP_LAST, "app:latest": KEEP_LAST, "web:1": KEEP_LAST}
    a1 = next(e for e in plan.remove if e.image == "sha256:a1")
    assert a1.freed == 0 and "untagged only: still tagged web:1" in a1.reason
    assert "3rd most recently used, beyond --keep-last 1" in a1.reason
    assert [e.image for e in plan.remove] == [
        "sha256:w0",
        "sha256:a1",
        "sha256:a2",
    ]  # least recently used first


def test_in_use_labelled_and_keep_globs_are_kept_with_their_rule() -> None:
    plan = plan_retention(
        snap(
            image("held", "app:held"),
            image("lab", "app:lab", labels={"keep": "yes"}),
            image("rel", "app:v1.0", "app:pr-7"),
            image("pr", "app:pr-8"),
            containers=(ContainerUse(id="c" * 64, image="sha256:held", created=ago(20)),),
        ),
        RetentionRules(keep_labels=(LabelRule(key="keep"),), keep=("app:v*",)),
    )
    assert removed(plan) == {"pr": (("app:pr-8",), True), "rel": (("app:pr-7",), False)}
    assert kept(plan) == {"app:held": IN_USE, "app:lab": KEPT_LABEL, "app:v1.0": KEPT_GLOB}
    reasons = {k.reference: k.reason for k in plan.kept}
    assert reasons["app:held"] == "in use by container cccccccccccc"
    assert reasons["app:lab"] == "kept label keep"
    assert reasons["app:v1.0"] == "kept by --keep app:v*"


def test_reference_globs_name_repositories_or_references() -> None:
    images = (image("a", "app:1"), image("b", "ci/x:1"), image("c", "ci/y:pr-1", "ci/y:main"))
    plan = plan_retention(snap(*images), RetentionRules(references=("ci/*",)))
    assert set(removed(plan)) == {"b", "c"}
    plan = plan_retention(snap(*images), RetentionRules(references=("ci/y:pr-*",)))
    assert removed(plan) == {"c": (("ci/y:pr-1",), False)}
    assert repository_of("localhost:5000/app:1") == "localhost:5000/app"
    assert matches(("localhost:5000/*",), "localhost:5000/app:1")


def test_a_glob_without_localhost_matches_the_name_podman_stores() -> None:
    # Podman stores `app:1` as localhost/app:1: the user types the name as they tagged it.
    assert matches(("app",), "localhost/app:1") and matches(("app:1",), "localhost/app:1")
    assert matches(("localhost/app",), "localhost/app:1")
    assert not matches(("app",), "localhost:5000/app:1") and not matches(("app",), "x/app:1")


def test_unused_for_keeps_what_was_used_recently() -> None:
    plan = plan_retention(
        snap(image("old", "a:1", days=10), image("new", "a:2", days=1)),
        RetentionRules(unused_for=7 * DAY),
    )
    assert set(removed(plan)) == {"old"}
    assert plan.kept[0].kind == RECENTLY_USED
    assert plan.kept[0].reason == "used 1 day ago (--unused-for 1w)"
    assert "unused for longer than 1w" in plan.remove[0].reason


def test_last_use_is_the_newest_of_every_source() -> None:
    snapshot = snap(
        image("a", "a:1", days=30, last_tagged=ago(20)),
        image("b", "b:1", days=30),
        image("c", "c:1", days=30),
        containers=(
            ContainerUse(id="f" * 64, image="sha256:b", created=ago(25), started=ago(24)),
            ContainerUse(id="e" * 64, image="sha256:b", created=ago(5), finished=ago(2)),
        ),
        usage={"sha256:c": recorded(ago(3)), "sha256:gone": recorded(ago(1))},
    )
    uses = last_uses(snapshot)
    assert (uses["sha256:a"].when, uses["sha256:a"].source) == (ago(20), "tagged")
    assert (uses["sha256:b"].when, uses["sha256:b"].source) == (
        ago(2),
        "container eeeeeeeeeeee finished",
    )
    assert (uses["sha256:c"].when, uses["sha256:c"].source) == (ago(3), "usage record")
    assert "sha256:gone" not in uses


def test_a_container_on_an_old_image_makes_it_recent_for_keep_last() -> None:
    plan = plan_retention(
        snap(
            image("old", "app:1", days=30),
            image("new", "app:2", days=1),
            containers=(
                ContainerUse(id="c" * 64, image="sha256:old", created=ago(30), started=ago(0.1)),
            ),
        ),
        RetentionRules(keep_last=1),
    )
    # app:1 is the most recently used: it takes the one place, and its container pins it too.
    assert removed(plan) == {"new": (("app:2",), True)}
    assert kept(plan) == {"app:1": IN_USE}


def test_the_usage_record_alone_orders_eviction() -> None:
    images = (image("x", "x:1", days=30), image("y", "y:1", days=20), image("z", "z:1", days=10))
    plain = plan_retention(snap(*images), RetentionRules(max_disk=200))
    assert [e.image for e in plain.remove] == ["sha256:x"]
    # A container ran on x and was removed between two runs: only the record knows.
    with_record = plan_retention(
        snap(*images, usage={"sha256:x": recorded(ago(1))}), RetentionRules(max_disk=200)
    )
    assert [e.image for e in with_record.remove] == ["sha256:y"]
    assert with_record.remove[0].last_use.source == "created"
    assert kept(with_record) == {"x:1": WITHIN_BUDGET, "z:1": WITHIN_BUDGET}


def test_max_disk_stops_exactly_when_enough_is_freed() -> None:
    images = tuple(image(f"i{n}", f"r:{n}", days=10 - n, size=100) for n in range(6))
    plan = plan_retention(snap(*images), RetentionRules(max_disk=300))
    assert [e.image for e in plan.remove] == ["sha256:i0", "sha256:i1", "sha256:i2"]
    assert plan.budget is not None and plan.budget.reached
    assert (plan.budget.before, plan.budget.after, plan.freed) == (600, 300, 300)
    assert "needed to get within 300B" in plan.remove[-1].reason
    within = plan_retention(snap(*images), RetentionRules(max_disk=600))
    assert within.remove == () and {k.kind for k in within.kept} == {WITHIN_BUDGET}


def test_max_disk_counts_the_engines_total_and_skips_untags() -> None:
    plan = plan_retention(
        snap(
            image("both", "a:1", "keep:1", days=30, size=500),
            image("one", "a:2", days=20, size=100),
            images_bytes=1000,
        ),
        RetentionRules(max_disk=950, references=("a",)),
    )
    # Untagging "both" would free nothing; "one" is the first delete and is enough.
    assert removed(plan) == {"one": (("a:2",), True)}
    assert plan.budget is not None and (plan.budget.before, plan.budget.after) == (1000, 900)


def test_a_budget_the_plan_cannot_reach_says_what_holds_the_rest() -> None:
    plan = plan_retention(
        snap(
            image("free", "a:1", size=100),
            image("held", "a:2", size=400),
            image("lab", "a:3", size=200, labels={"pin": "1"}),
            image("other", "b:1", size=50),
            containers=(ContainerUse(id="d" * 64, image="sha256:held", created=ago(1)),),
        ),
        RetentionRules(max_disk=100, references=("a",), keep_labels=(LabelRule(key="pin"),)),
    )
    assert removed(plan) == {"free": (("a:1",), True)}
    budget = plan.budget
    assert budget is not None and not budget.reached
    assert (budget.before, budget.after, budget.shortfall) == (750, 650, 550)
    assert budget.held == ((IN_USE, 400), (KEPT_LABEL, 200), ("out-of-scope", 50))


def test_an_image_with_children_is_only_untagged() -> None:
    plan = plan_retention(snap(image("base", "base:1", has_children=True)), RetentionRules())
    assert removed(plan) == {"base": (("base:1",), False)}
    assert "child images" in plan.remove[0].reason


def test_rules_refuse_negative_numbers() -> None:
    with pytest.raises(InvalidInput):
        RetentionRules(keep_last=-1)
    with pytest.raises(InvalidInput):
        RetentionRules(max_disk=-5)


# Random engine states: a few repositories, tags shared between images' repositories, some
# containers, labels, usage entries; then every rule at random.
_REPOS = ("app", "web", "ci/x", "reg:5000/y")


@st.composite
def states(draw: st.DrawFn) -> tuple[EngineSnapshot, RetentionRules]:
    count = draw(st.integers(min_value=0, max_value=12))
    all_tags = [f"{r}:{t}" for r in _REPOS for t in ("1", "2", "latest", "pr-1")]
    tags_left = list(all_tags)
    images = []
    for n in range(count):
        tags = (
            draw(st.lists(st.sampled_from(tags_left), max_size=3, unique=True)) if tags_left else []
        )
        tags_left = [t for t in tags_left if t not in tags]
        images.append(
            TaggedImage(
                id=f"sha256:{n:02d}",
                tags=tuple(tags),
                # Whole hundreds, so a total lands exactly on a limit often.
                size=draw(st.integers(min_value=0, max_value=5)) * 100,
                created=ago(draw(st.integers(min_value=0, max_value=60))),
                last_tagged=draw(st.none() | st.integers(0, 60).map(ago)),
                labels=draw(st.sampled_from([{}, {"pin": "1"}, {"pin": "0"}])),
                has_children=draw(st.booleans()),
            )
        )
    ids = [i.id for i in images]
    containers = tuple(
        ContainerUse(
            id=f"{n:064x}", image=draw(st.sampled_from(ids)), created=ago(draw(st.integers(0, 60)))
        )
        for n in range(draw(st.integers(0, 3) if ids else st.just(0)))
    )
    usage = (
        draw(
            st.dictionaries(
                st.sampled_from(ids), st.integers(0, 60).map(lambda d: recorded(ago(d))), max_size=4
            )
        )
        if ids
        else {}
    )
    globs = st.sampled_from(["app", "ci/*", "*:pr-*", "web:1", "reg:5000/*", "nomatch"])
    rules = RetentionRules(
        references=tuple(draw(st.lists(globs, max_size=2))),
        keep_last=draw(st.none() | st.integers(0, 3)),
        unused_for=draw(st.none() | st.integers(1, 40).map(lambda d: d * DAY)),
        max_disk=draw(st.none() | st.integers(0, 30).map(lambda n: n * 100)),
        keep_labels=draw(st.sampled_from([(), (LabelRule(key="pin", value="1"),)])),
        keep=tuple(draw(st.lists(globs, max_size=2))),
    )
    snapshot = EngineSnapshot(images=tuple(images), now=NOW, containers=containers, usage=usage)
    return snapshot, rules


@settings(max_examples=300, deadline=None)
@given(states())
def test_the_plan_never_touches_what_a_rule_protects(
    state: tuple[EngineSnapshot, RetentionRules],
) -> None:
    snapshot, rules = state
    plan = plan_retention(snapshot, rules)
    by_id = {i.id: i for i in snapshot.images}
    in_use = {c.image for c in snapshot.containers}
    planned_tags = [t for e in plan.remove for t in e.tags]
    assert len(planned_tags) == len(set(planned_tags))
    for eviction in plan.remove:
        image = by_id[eviction.image]
        assert eviction.image not in in_use
        assert not any(r.matches(image.labels) for r in rules.keep_labels)
        assert eviction.tags and set(eviction.tags) <= set(image.tags)
        for tag in eviction.tags:
            assert not rules.references or matches(rules.references, tag)
            assert not matches(rules.keep, tag)
        # Deleted only when no tag of it stays outside the plan.
        assert eviction.delete == (set(eviction.tags) == set(image.tags) and not image.has_children)
        if rules.unused_for is not None:
            assert (NOW - eviction.last_use.when).total_seconds() >= rules.unused_for
    # Every candidate is either planned or kept with a rule, never both.
    candidates = {
        t
        for i in snapshot.images
        for t in i.tags
        if not rules.references or matches(rules.references, t)
    }
    kept_tags = {k.reference for k in plan.kept}
    assert kept_tags.isdisjoint(planned_tags) and kept_tags | set(planned_tags) == candidates
    order = [(e.last_use.when, e.image) for e in plan.remove]
    assert order == sorted(order)


@settings(max_examples=300, deadline=None)
@given(states())
def test_the_max_disk_plan_is_lru_ordered_and_minimal(
    state: tuple[EngineSnapshot, RetentionRules],
) -> None:
    snapshot, rules = state
    if rules.max_disk is None:
        rules = RetentionRules(references=rules.references, keep=rules.keep, max_disk=500)
    assert rules.max_disk is not None
    plan = plan_retention(snapshot, rules)
    unbounded = plan_retention(
        snapshot,
        RetentionRules(
            references=rules.references,
            keep_last=rules.keep_last,
            unused_for=rules.unused_for,
            keep_labels=rules.keep_labels,
            keep=rules.keep,
        ),
    )
    deletable = [e.image for e in unbounded.remove if e.delete]
    chosen = [e.image for e in plan.remove]
    assert all(e.delete for e in plan.remove)
    # A prefix of what the rules allow, least recently used first...
    assert chosen == deletable[: len(chosen)]
    budget = plan.budget
    assert budget is not None
    total = sum(i.size for i in snapshot.images)
    assert budget.before == total and budget.after == total - plan.freed
    # ...and the shortest one: without its last delete the images would still be over.
    if chosen:
        assert budget.after + plan.remove[-1].freed > rules.max_disk
    if budget.reached:
        assert budget.after <= rules.max_disk
    else:
        assert chosen == deletable and budget.shortfall == budget.after - rules.max_disk
