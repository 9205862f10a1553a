"""push-private: push a local image to the private registry and verify the digest there.

Two ways (resolve_via): direct (direct.py: dockops compresses and uploads the layers), or the
daemon's push (a temporary local tag, the stream read by transfer.push_image, the tag removed).
The daemon pushes the local tag REGISTRY/NAME:TAG itself, so no other local name can stand in
for it: when the user already has that tag on another image, moving it could leave that image
untagged for a prune to take, so it is moved only when asked (--move-tag).
Either way the registry is asked first (a quick, bounded answer when it is down or wants a
login) and last (its manifest digest must be the one pushed: a proxy or a half-finished push
cannot pass for success).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockops.core.images.transfer import push_image
from dockops.core.push_private.direct import DirectResult, push_direct
from dockops.core.registry.client import RegistryClient, registry_client
from dockops.engine.api import Engine
from dockops.engine.errors import user_named
from dockops.errors import EngineRefused, InvalidInput
from dockops.progress import ProgressCallback, ignore
from dockops.reference import Reference, is_image_id, parse_reference
from dockops.units import short_id

if TYPE_CHECKING:
    from dockops.retry import RetryPolicy

VIAS = ("auto", "direct", "daemon")


def resolve_via(via: str) -> str:
    """auto: direct when the engine is on this machine (a unix socket), where reading its save
    stream costs nothing and dockops's compression is 2x faster than the daemon's push
    (bench/direct.py); daemon for a remote engine, whose layers should not make a round trip
    through this machine."""
    if via not in VIAS:
        raise InvalidInput(f"--via {via}: choose auto, direct or daemon")
    if via != "auto":
        return via
    from dockops.engine.address import local_socket

    return "direct" if local_socket() is not None else "daemon"


@dataclass(frozen=True)
class PushPrivateResult:
    reference: str  # REGISTRY/NAME:TAG
    digest: str
    source: str
    via: str  # "direct" (dockops uploads) or "daemon" (the engine's push)
    layers: int
    uploaded_layers: int | None  # direct only: layers sent (the rest the registry had)
    uploaded_bytes: int | None  # direct only: compressed bytes sent
    attempts: int
    tag_removed: bool  # daemon: the temporary local REGISTRY/NAME:TAG tag was removed after
    moved_from: str | None = None  # the image the local REGISTRY/NAME:TAG named before (moved)


def target(source: str, registry: str, as_: str | None = None) -> tuple[str, str]:
    """The repository and tag in the registry for `source` (pure: unit-tested).

    The source's own registry host is dropped (and Docker Hub's `library/`); --as replaces
    the name, and the tag too when it names one.

    Raises:
        InvalidInput: an image ID or digest without --as NAME:TAG, or --as with a host.
    """
    name: str | None = None
    tag: str | None = None
    if not is_image_id(source):
        ref = parse_reference(source)
        short = ref.familiar()  # Docker Hub's names as docker prints them, index.docker.io too
        name = short.path if short.domain is None else ref.path
        tag = ref.tag or (None if ref.digest else "latest")
    if as_ is not None:
        renamed = parse_reference(as_)
        if renamed.domain is not None or renamed.digest:
            raise InvalidInput(f"--as {as_}: give NAME[:TAG], without a registry or digest")
        name = renamed.path
        tag = renamed.tag or tag or "latest"
    if name is None or tag is None:
        raise InvalidInput(f"push-private {source}: give the name to push as with --as NAME:TAG")
    return f"{registry}/{name}", tag


def push_private(
    engine: Engine,
    reference: str,
    registry: str,
    *,
    as_: str | None = None,
    keep_tag: bool = False,
    move_tag: bool = False,
    via: str = "auto",
    on_progress: ProgressCallback = ignore,
    policy: RetryPolicy | None = None,
) -> PushPrivateResult:
    """Push a local image to the private registry and check the registry has exactly it.

    Args:
        engine: the engine (with the long read timeout).
        reference: the local image (reference or ID).
        registry: HOST:PORT.
        as_: NAME[:TAG] in the registry instead of the source's.
        keep_tag: keep (direct: make) the local REGISTRY/NAME:TAG tag.
        move_tag: when the local REGISTRY/NAME:TAG names another image, move it to this one
            (it stays there after the push); without it that is refused.
        via: "direct" (dockops reads the image from the engine and uploads it), "daemon", or
            "auto" (resolve_via).
        on_progress: push progress and retry notices.
        policy: push retry bounds (default retry.TRANSFER).

    Returns:
        The pushed reference and its verified manifest digest.

    Raises:
        InvalidInput: no such local image, a bad name.
        RegistryUnreachable: down, TLS or authentication failure (with the login hint), or
            faults outlasting the retries.
        EngineRefused: the daemon refused, the registry holds another digest, or the local
            REGISTRY/NAME:TAG names another image and move_tag is not given (nothing is done).
    """
    via = resolve_via(via)
    repository, tag = target(reference, registry, as_)
    pushed_ref = f"{repository}:{tag}"
    name = repository.removeprefix(f"{registry}/")
    what = f"push-private {reference}"
    with user_named():
        image = engine.image(reference, what=what)
    image_id = str(image["Id"])
    held = _tagged(engine, pushed_ref) if via == "daemon" or keep_tag else None
    moved_from = held if held not in (None, image_id) else None
    if moved_from is not None and not move_tag:
        raise EngineRefused(_tag_in_the_way(engine, what, pushed_ref, moved_from, image_id))
    with registry_client(registry) as api:
        api.ping()
        if via == "direct":
            result = push_direct(
                engine, api, image, name, tag, on_progress=on_progress, policy=policy
            )
            _verify(api, what, name, tag, result.digest)
            if keep_tag:
                engine.tag(image_id, repository, tag, what=f"tag {pushed_ref}")
            uploaded = [layer for layer in result.layers if layer.action == "uploaded"]
            return PushPrivateResult(
                reference=pushed_ref,
                digest=result.digest,
                source=reference,
                via=via,
                layers=len(result.layers),
                uploaded_layers=len(uploaded),
                uploaded_bytes=result.uploaded_bytes,
                attempts=result.attempts,
                tag_removed=False,
                moved_from=moved_from,
            )
        existed = held is not None
        engine.tag(image_id, repository, tag, what=f"tag {pushed_ref}")
        done = False
        try:
            pushed_by_daemon = push_image(
                engine,
                pushed_ref,
                on_progress=on_progress,
                policy=policy,
            )
            pushed = pushed_by_daemon.tags[0].digest if pushed_by_daemon.tags else None
            if not pushed:
                raise EngineRefused(f"{what}: the daemon reported no digest for {pushed_ref}")
            _verify(api, what, name, tag, pushed)
            done = True
        finally:
            if moved_from is not None and not done:
                # The tag was moved for a push that failed: it goes back where the user had it.
                engine.tag(moved_from, repository, tag, what=f"tag {pushed_ref}")
            removed = not keep_tag and not existed and _untag(engine, pushed_ref, image_id)
    return PushPrivateResult(
        reference=pushed_ref,
        digest=pushed,
        source=reference,
        via=via,
        layers=len(pushed_by_daemon.layers),
        uploaded_layers=None,
        uploaded_bytes=None,
        attempts=pushed_by_daemon.attempts,
        tag_removed=removed,
        moved_from=moved_from,
    )


def _verify(api: RegistryClient, what: str, name: str, tag: str, pushed: str) -> None:
    """The registry's own digest for name:tag must be the one just pushed."""
    held = api.manifest_digest(name, tag)
    if held != pushed:
        raise EngineRefused(
            f"{what}: the registry holds {held or 'nothing'} for {name}:{tag}, "
            f"but {pushed} was pushed"
        )


def _tagged(engine: Engine, reference: str) -> str | None:
    """The ID of the image the local tag `reference` names, None when there is no such tag."""
    found = engine.find_image(reference)
    return None if found is None else str(found["Id"])


def _tag_in_the_way(engine: Engine, what: str, reference: str, held: str, image_id: str) -> str:
    tags = engine.image(held, what=f"inspect {held}").get("RepoTags") or []
    # As docker prints them: podman lists docker.io/library/busybox:latest for busybox:latest.
    others = [str(parse_reference(t).familiar()) for t in tags if t != reference]
    left = f"tagged {', '.join(others)}" if others else "untagged (a prune would delete it)"
    return (
        f"{what}: the local tag {reference} names another image, {short_id(held)}; --move-tag "
        f"moves it to {short_id(image_id)}, leaving {short_id(held)} {left}"
    )


def _untag(engine: Engine, reference: str, image_id: str) -> bool:
    """Remove our temporary tag, unless it is the image's only name (removing it would then
    delete the image: an image pushed by ID keeps its new name instead)."""
    what = f"untag {reference}"
    tags = engine.image(image_id, what=what).get("RepoTags") or []
    if [t for t in tags if t != reference]:
        engine.remove_image(reference, noprune=True, what=what)
        return True
    return False


def direct_reference(reference: str) -> Reference:
    """The reference a direct push takes: one naming a registry host (never Docker Hub),
    by tag.

    Raises:
        InvalidInput: no registry host in the reference, or a digest.
    """
    ref = parse_reference(reference)
    if ref.domain in (None, "docker.io") or ref.digest:
        raise InvalidInput(
            f"push {reference} --via direct: name a registry host and a tag (HOST:PORT/NAME:TAG)"
        )
    return ref


def push_reference_direct(
    engine: Engine,
    reference: str,
    *,
    on_progress: ProgressCallback = ignore,
    policy: RetryPolicy | None = None,
) -> DirectResult:
    """`dockops push REGISTRY/NAME:TAG --via direct`: the local image of that name, uploaded
    by dockops to the registry the reference names.

    Raises:
        InvalidInput: no registry host in the reference, a digest, no such local image.
        RegistryUnreachable, EngineRefused: as push_private.
    """
    ref = direct_reference(reference)
    assert ref.domain is not None
    tag = ref.tag or "latest"
    with user_named():
        image = engine.image(f"{ref.repository}:{tag}", what=f"push {reference}")
    with registry_client(ref.domain) as api:
        api.ping()
        result = push_direct(
            engine, api, image, ref.path, tag, on_progress=on_progress, policy=policy
        )
        _verify(api, f"push {reference}", ref.path, tag, result.digest)
    return result
