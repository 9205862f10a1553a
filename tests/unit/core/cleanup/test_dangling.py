"""Planning of prune-dangling: each rule, and properties over random engine states; what
dangling and a prune's deletes ask of an Engine; an image another run deleted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockops.core.cleanup.dangling import (
    GONE,
    HAS_CHILDREN,
    IN_USE,
    KEPT_LABEL,
    TOO_YOUNG,
    Failure,
    Kept,
    LabelRule,
    PrunePlan,
    Removal,
    execute_plan,
    list_dangling,
    parse_label_rule,
    plan_prune,
    read_refusal,
)
from dockops.core.cleanup.snapshot import ImageState
from dockops.engine.errors import Conflict, Missing, Refused
from dockops.errors import InvalidInput
from dockops.units import human_duration, parse_duration
from tests.support.fake_engine import fake_engine

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAY = 86400.0


def image(name: str, *, days: float = 10, **kw: object) -> ImageState:
    return ImageState(
        id=f"sha256:{name}",
        created=NOW - timedelta(days=days),
        size=100,
        tagged=bool(kw.pop("tagged", False)),
        **kw,  # type: ignore[arg-type]
    )


def test_each_rule_with_its_reason() -> None:
    plan = plan_prune(
        [
            image("old"),
            image("tagged", tagged=True),
            image("held", containers=("web", "worker")),
            image("parent", has_children=True),
            image("labelled", labels={"keep": "yes"}),
            image("young", days=0.5),
        ],
        now=NOW,
        older_than=DAY,
        keep_labels=[LabelRule("keep")],
    )
    assert [r.id for r in plan.remove] == ["sha256:old"]
    assert {k.id: (k.kind, k.reason) for k in plan.kept} == {
        "sha256:held": (IN_USE, "in use by container web, worker"),
        "sha256:parent": (HAS_CHILDREN, "has dependent child images"),
        "sha256:labelled": (KEPT_LABEL, "kept label keep"),
        "sha256:young": (TOO_YOUNG, "too young (12 hours old, limit 1d)"),
    }


def test_no_age_limit_without_the_flag() -> None:
    plan = plan_prune([image("new", days=0)], now=NOW)
    assert [r.id for r in plan.remove] == ["sha256:new"]


def test_label_value_must_match_when_given() -> None:
    rule = parse_label_rule("env=prod")
    assert rule.matches({"env": "prod"}) and not rule.matches({"env": "dev"})
    assert parse_label_rule("env").matches({"env": ""})
    assert parse_label_rule("a=b=c") == LabelRule("a", "b=c")


@pytest.mark.parametrize("text", ["", "=x", " k", "a b=c"])
def test_bad_label_rules(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_label_rule(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("12h", 43200), ("7d", 604800), ("1w", 604800), ("1h30m", 5400), ("90s", 90)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(human_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "h", "-1h", "0h", "1.5h", "1h ", "1H"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_duration(text)
    assert info.value.exit_code == 2


states = st.builds(
    ImageState,
    id=st.uuids().map(lambda u: f"sha256:{u.hex}"),
    created=st.integers(0, 60 * 86400).map(lambda s: NOW - timedelta(seconds=s)),
    size=st.integers(0, 10**9),
    tagged=st.booleans(),
    labels=st.dictionaries(st.sampled_from(["keep", "env", "team"]), st.sampled_from(["", "prod"])),
    containers=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True).map(tuple),
    has_children=st.booleans(),
)
rules = st.lists(st.sampled_from([LabelRule("keep"), LabelRule("env", "prod")]), max_size=2)


@given(
    st.lists(states, max_size=30, unique_by=lambda i: i.id),
    st.none() | st.floats(60, 30 * DAY),
    rules,
)
def test_plan_never_selects_what_must_stay(
    images: list[ImageState], older_than: float | None, keep: list[LabelRule]
) -> None:
    plan = plan_prune(images, now=NOW, older_than=older_than, keep_labels=keep)
    by_id = {i.id: i for i in images}
    for removal in plan.remove:
        chosen = by_id[removal.id]
        assert not chosen.tagged
        assert not chosen.containers
        assert not chosen.has_children
        assert not any(rule.matches(chosen.labels) for rule in keep)
        if older_than is not None:
            assert (NOW - chosen.created).total_seconds() > older_than
        assert removal.size == chosen.size
    # Every dangling image is either removed or kept with a reason, never both, never lost.
    removed = {r.id for r in plan.remove}
    kept = {k.id for k in plan.kept}
    assert not removed & kept
    assert removed | kept == {i.id for i in images if not i.tagged}
    assert all(k.reason and k.kind for k in plan.kept)


# --- over an Engine: what is asked of it, and how its refusals read ---------------------------


class _Engine:
    """Answers as an Engine does; `refusal` is what its DELETE raises."""

    def __init__(self, refusal: Exception | None = None) -> None:
        self.refusal = refusal
        self.asked: list[object] = []

    def images(
        self, *, all: bool = True, filters: object = None, what: str = ""
    ) -> list[dict[str, object]]:
        self.asked.append(("images", all, filters))
        return [
            {"Id": "sha256:old", "Created": 1_000, "Size": 5},
            {"Id": "sha256:new", "Created": 2_000, "Size": 7},
        ]

    def containers(self, *, all: bool = True, what: str = "") -> list[dict[str, object]]:
        return [{"Id": "c" * 64, "Names": ["/box"], "ImageID": "sha256:old"}]

    def find_image(self, reference: str) -> dict[str, object] | None:
        return {"Id": reference, "RepoTags": []}

    def remove_image(self, reference: str, *, force: bool, noprune: bool) -> list[object]:
        if self.refusal is not None:
            raise self.refusal
        return []


def test_dangling_lists_top_level_untagged_images_newest_first_with_holders() -> None:
    engine = _Engine()
    found = list_dangling(engine)  # type: ignore[arg-type]
    assert engine.asked == [("images", False, {"dangling": ["true"]})]
    assert [(d.id, d.size, d.containers) for d in found] == [
        ("sha256:new", 7, ()),
        ("sha256:old", 5, ("box",)),
    ]


@pytest.mark.parametrize(
    ("refusal", "kind"),
    [
        (Missing("No such image: sha256:aa", 404), GONE),
        (
            Conflict("conflict: unable to delete aa - image is being used by container c1", 409),
            IN_USE,
        ),
        (
            Conflict("conflict: unable to delete aa - image has dependent child images", 409),
            HAS_CHILDREN,
        ),
    ],
)
def test_a_refused_delete_is_a_reason_to_keep(refusal: Exception, kind: str) -> None:
    plan = PrunePlan(remove=(Removal(id="sha256:aa", size=1),), kept=())
    result = execute_plan(_Engine(refusal), plan)  # type: ignore[arg-type]
    assert result.removed == () and result.failed == ()
    assert [k.kind for k in result.kept] == [kind]


def test_any_other_refusal_is_a_failure_in_the_engines_words() -> None:
    plan = PrunePlan(remove=(Removal(id="sha256:aa", size=1),), kept=())
    result = execute_plan(_Engine(Refused("driver failed", 500)), plan)  # type: ignore[arg-type]
    assert result.failed == (Failure(id="sha256:aa", error="driver failed"),)


@pytest.mark.parametrize(
    "text",
    [
        "No such image: sha256:aa",
        "unrecognized image ID sha256:aa",  # deleted by another run during this delete
    ],
)
def test_an_image_another_run_deleted_is_kept_as_gone(text: str) -> None:
    outcome = read_refusal("sha256:aa", text)
    assert isinstance(outcome, Kept) and outcome.kind == GONE


def test_podmans_in_use_refusal_names_the_holder_as_docker_does() -> None:
    text = (
        "image sha256:aa is in use: image used by " + "c" * 64 + ": image is in use by a "
        "container: consider listing external containers and force-removing image"
    )
    outcome = read_refusal("sha256:aa", text)
    assert outcome == Kept(
        id="sha256:aa", reason=f"in use by container {'c' * 12} (since planning)", kind=IN_USE
    )


HALF_DELETED = "failed to convert ImageData to ImageInspect 'sha256:aa': image not known"


PODMAN_RACED = (
    'normalizing image: parsing named reference "aa": invalid repository name (aa), cannot '
    "specify 64-byte hexadecimal strings"
)


@pytest.mark.parametrize(
    "delete",
    [
        (200, [{"Deleted": "aa"}]),  # this run's delete: the inspect before it met the other's
        (500, {"message": PODMAN_RACED}),  # the other run's delete ended during this one
    ],
)
def test_podman_mid_delete_answers_are_read_as_an_image_going(
    delete: tuple[int, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockops.core.cleanup import snapshot

    monkeypatch.setattr(snapshot.time, "sleep", lambda seconds: None)
    inspect = "GET /images/sha256:aa/json"
    engine = fake_engine(
        {
            inspect: [(500, {"message": HALF_DELETED}), (200, {"Id": "sha256:aa"}), (404, {})],
            "DELETE /images/sha256:aa": delete,
        }
    )
    result = execute_plan(engine, PrunePlan(remove=(Removal(id="sha256:aa", size=1),), kept=()))
    assert result.failed == ()
    if delete[0] == 200:
        assert result.removed == (Removal(id="sha256:aa", size=1),)
    else:
        assert [k.kind for k in result.kept] == [GONE]


def test_a_tag_gained_since_planning_is_named_as_docker_names_it() -> None:
    engine = fake_engine(
        {"GET /images/sha256:aa/json": (200, {"RepoTags": ["docker.io/library/busybox:v2"]})}
    )
    result = execute_plan(engine, PrunePlan(remove=(Removal(id="sha256:aa", size=1),), kept=()))
    assert [k.reason for k in result.kept] == ["tagged since planning (busybox:v2)"]
