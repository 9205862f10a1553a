"""pull and push: the daemon's JSON stream read line by line, with bounded retries.

The daemon reports a failed pull or push inside its 200 answer, as an `errorDetail` line: an
error line is a failure carrying the daemon's own words. The streams come from daemon_lines,
which bounds how long one may stay silent (a stall).

Podman's Docker API (4.3) differs where it matters here (podman_transfer.py meets it): it
verifies TLS for every registry, loopback too, unless a request says tlsVerify=false; its compat
pull takes no such parameter, so pulls go through its own libpod endpoint; its push of a
repository without a tag pushes nothing; its streams name no layer pushed, and no digest pulled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dockops import retry
from dockops.core.images import podman_transfer as podman
from dockops.core.images.failures import (
    is_registry_cause,
    is_transient,
    wants_login,
)
from dockops.core.registry.trust import untrusted_hint
from dockops.engine.daemon_lines import Stalled, daemon_lines
from dockops.engine.errors import Refused, daemon_error, user_named
from dockops.errors import (
    DockopsError,
    EngineRefused,
    EngineUnreachable,
    InvalidInput,
    RegistryUnreachable,
)
from dockops.progress import ProgressCallback, ProgressEvent, ignore
from dockops.reference import Reference, parse_reference
from dockops.retry import RetryPolicy

if TYPE_CHECKING:
    from dockops.engine.api import Engine


@dataclass(frozen=True)
class TagTransfer:
    """One tag moved: its manifest digest, and (pull) the local image ID or (push) manifest size."""

    tag: str
    digest: str | None
    id: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class TransferResult:
    action: str
    reference: str
    tags: tuple[TagTransfer, ...]
    layers: tuple[str, ...]
    status: str | None
    attempts: int


# The line closing each pushed tag, from both engines ("v1: digest: sha256:... size: 528");
# docker adds an aux line with the same three, podman has only this one.
_PUSHED = re.compile(r"^(?P<tag>\S+): digest: (?P<digest>\S+) size: (?P<size>\d+)$")


class _DaemonError(Exception):
    """A failure the daemon reported, in the stream or as the Engine API's answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.status = status


@dataclass
class _Seen:
    """What one attempt's stream said, besides progress."""

    label: str
    tags: dict[str, TagTransfer] = field(default_factory=dict)
    layers: dict[str, None] = field(default_factory=dict)
    current_tag: str | None = None
    status: str | None = None
    pulled: tuple[str, ...] = ()  # podman's libpod pull: the image IDs it ends with

    def take(self, line: dict[str, Any], on_progress: ProgressCallback) -> None:
        error = daemon_error(line)
        if error is not None:
            raise _DaemonError(error)
        if "stream" in line or "images" in line:  # podman's libpod pull
            self._libpod(line, on_progress)
            return
        aux = line.get("aux")
        if isinstance(aux, dict) and "Tag" in aux:  # push: one per tag, after its manifest
            tag = str(aux["Tag"])
            self.tags[tag] = TagTransfer(tag=tag, digest=aux.get("Digest"), size=aux.get("Size"))
            return
        status = str(line.get("status") or "")
        item = line.get("id")
        if status.startswith("Pulling from ") and item:
            self.current_tag = str(item)
            self.tags.setdefault(self.current_tag, TagTransfer(tag=self.current_tag, digest=None))
        elif status.startswith("Digest: ") and self.current_tag:
            self.tags[self.current_tag] = TagTransfer(
                tag=self.current_tag, digest=status.split(": ", 1)[1]
            )
        elif status.startswith("Status: "):
            self.status = status.removeprefix("Status: ")
        elif pushed := _PUSHED.match(status):
            tag = pushed["tag"]
            self.tags[tag] = TagTransfer(tag=tag, digest=pushed["digest"], size=int(pushed["size"]))
        elif item:
            self.layers[str(item)] = None
            detail = line.get("progressDetail") or {}
            on_progress(
                ProgressEvent(
                    item=str(item),
                    status=status,
                    current=detail.get("current"),
                    total=detail.get("total"),
                )
            )
            return
        if status:
            on_progress(ProgressEvent(item=self.label, status=status))

    def _libpod(self, line: dict[str, Any], on_progress: ProgressCallback) -> None:
        if "images" in line:
            self.pulled = tuple(str(i).removeprefix("sha256:") for i in line["images"] or ())
            return
        text = " ".join(str(line.get("stream") or "").split())
        blob = podman.copied_blob(text)
        if blob is not None:
            item, status = blob
            self.layers[item] = None
            on_progress(ProgressEvent(item=item, status=status))
        elif text:
            on_progress(ProgressEvent(item=self.label, status=text))


def _attempt(
    what: str, label: str, start: Callable[[], Iterator[dict[str, Any]]], on: ProgressCallback
) -> _Seen:
    seen = _Seen(label)
    try:
        stream = start()
        try:
            for line in stream:
                seen.take(line, on)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    except Refused as exc:  # the Engine API's own answer (a 500 for a registry fault, too)
        raise _DaemonError(exc.message, exc.status) from exc
    except EngineUnreachable as exc:
        raise EngineUnreachable(f"{what}: {exc.message}") from exc
    except EngineRefused as exc:
        raise EngineRefused(f"{what}: {exc.message}") from exc
    except Stalled as exc:
        # Not retried: each try would add a whole stall timeout to a bounded wait.
        raise exc.error(what) from exc
    return seen


def _run(
    what: str,
    label: str,
    start: Callable[[], Iterator[dict[str, Any]]],
    on_progress: ProgressCallback,
    policy: RetryPolicy,
    *,
    registry: str | None = None,
) -> tuple[_Seen, int]:
    def transient(exc: BaseException) -> bool:
        return isinstance(exc, _DaemonError) and is_transient(exc.message)

    def tell(attempt: int, error: BaseException, wait: float) -> None:
        on_progress(
            ProgressEvent(
                item=label,
                status=f"attempt {attempt}/{policy.attempts} failed ({error}); "
                f"retrying in {wait:.1f}s",
            )
        )

    retries = retry.retrying(policy, transient=transient, on_retry=tell)
    try:
        for attempt in retries:
            with attempt:
                seen = _attempt(what, label, start, on_progress)
    except _DaemonError as exc:
        raise _failure(what, exc, retries.attempts, registry) from exc
    return seen, retries.attempts


def _failure(
    what: str, exc: _DaemonError, attempts: int, registry: str | None = None
) -> DockopsError:
    if registry and wants_login(exc.message) and not _has_login(registry):
        from dockops.core.registry.auth import login_hint

        return RegistryUnreachable(f"{what}: {login_hint(registry)}")
    text = f"{what}: {exc.message}"
    if is_transient(exc.message) and attempts > 1:
        text += f" (gave up after {attempts} attempts)"
    hint = untrusted_hint(registry, exc.message) if registry else None
    if hint:
        text += f"; {hint}"
    if is_registry_cause(exc.message):
        return RegistryUnreachable(text)
    return EngineRefused(text)


def _has_login(registry: str) -> bool:
    """Credentials are stored for `registry` (a helper that cannot be asked counts as yes:
    the daemon's own words are then the better message)."""
    from dockops.core.registry.credentials import get_credentials

    try:
        return get_credentials(registry) is not None
    except DockopsError:
        return True


def _registry_of(ref: Reference) -> str:
    return ref.domain or "docker.io"


def _auth(registry: str) -> dict[str, str] | None:
    """The stored login for `registry`, sent to the daemon with the request (as docker's)."""
    from dockops.core.registry.credentials import auth_config

    return auth_config(registry)


def _target(reference: str, all_tags: bool, action: str) -> tuple[Reference, str | None]:
    ref = parse_reference(reference)
    if all_tags and (ref.tag or ref.digest):
        raise InvalidInput(f"{action} --all-tags takes a repository without tag or digest")
    if all_tags:
        return ref, None
    return ref, ref.digest or ref.tag or "latest"


def pull_image(
    engine: Engine,
    reference: str,
    *,
    all_tags: bool = False,
    on_progress: ProgressCallback = ignore,
    policy: RetryPolicy | None = None,
) -> TransferResult:
    """Pull an image (or every tag of a repository), retrying transient registry faults.

    Args:
        engine: the engine (a long-running one: layers take time).
        reference: repository[:tag|@digest]; no tag means latest.
        all_tags: every tag of the repository (the reference then names no tag).
        on_progress: receives one event per layer status change, and retry notices.
        policy: retry bounds; default retry.TRANSFER.

    Returns:
        The tags pulled with their digests and local image IDs, the layers seen, the daemon's
        final status line and the number of attempts.

    Raises:
        InvalidInput: a tag together with all_tags; the stored credentials cannot be read.
        EngineRefused: the daemon refused (missing tag, bad manifest...), with its own text.
        RegistryUnreachable: registry down, TLS or auth failure, transient faults outlasting
            the retries, or a stall (no progress for DOCKOPS_STALL_TIMEOUT; not retried).
        EngineUnreachable: lost the engine, or it stopped answering.
    """
    ref, tag = _target(reference, all_tags, "pull")
    what = f"pull {ref.repository if all_tags else reference}"
    registry = _registry_of(ref)
    auth = _auth(registry)
    on_podman = engine.is_podman
    each: list[tuple[str, dict[str, Any]]]
    if on_podman:
        queries = podman.pull_queries(ref, tag, registry)
        each = [(podman.LIBPOD_PULL, query) for query in queries]
    else:
        each = [("/images/create", {"fromImage": ref.repository, "tag": tag})]

    def start() -> Iterator[dict[str, Any]]:
        for path, params in each:
            yield from daemon_lines(engine, path, params, ref.repository, registry, auth=auth)

    seen, attempts = _run(
        what, ref.repository, start, on_progress, policy or retry.TRANSFER, registry=registry
    )
    if on_podman:
        tags = [
            TagTransfer(tag=one, digest=digest, id=image_id)
            for one, digest, image_id in podman.pulled_tags(
                engine, ref, registry, queries, seen.pulled, what
            )
        ]
    else:
        tags = [_local(engine, ref, item, what) for item in seen.tags.values()]
    return TransferResult(
        action="pull",
        reference=str(ref) if not all_tags else ref.repository,
        tags=tuple(tags),
        layers=tuple(seen.layers),
        status=seen.status,
        attempts=attempts,
    )


def _local(engine: Engine, ref: Reference, item: TagTransfer, what: str) -> TagTransfer:
    """`item` (a tag or digest the daemon pulled) with the ID of the local image it names."""
    local = f"{ref.repository}@{item.tag}" if ":" in item.tag else f"{ref.repository}:{item.tag}"
    with user_named():
        image_id = str(engine.image(local, what=what)["Id"])
    return TagTransfer(tag=item.tag, digest=item.digest, id=image_id)


def push_image(
    engine: Engine,
    reference: str,
    *,
    all_tags: bool = False,
    on_progress: ProgressCallback = ignore,
    policy: RetryPolicy | None = None,
) -> TransferResult:
    """Push an image (or every local tag of a repository), retrying transient registry faults.

    Args:
        engine: the engine (a long-running one).
        reference: repository[:tag]; no tag means latest.
        all_tags: every local tag of the repository.
        on_progress: receives one event per layer status change, and retry notices.
        policy: retry bounds; default retry.TRANSFER.

    Returns:
        The tags pushed with their manifest digests and sizes, the layers seen, attempts.

    Raises:
        InvalidInput: a digest, a tag with all_tags, or no such local image; the stored
            credentials cannot be read.
        EngineRefused: the daemon refused, with its own text.
        RegistryUnreachable: registry down, TLS or auth failure, transient faults outlasting
            the retries, or a stall (no progress for DOCKOPS_STALL_TIMEOUT; not retried).
        EngineUnreachable: lost the engine, or it stopped answering.
    """
    ref, tag = _target(reference, all_tags, "push")
    if ref.digest:
        raise InvalidInput(f"push {reference}: push a tag, not a digest")
    what = f"push {ref.repository if all_tags else f'{ref.repository}:{tag}'}"
    # The daemon says "does not exist locally" only inside a 200 stream; ask first, so an
    # unknown image is bad input (exit 2) like everywhere else.
    found: list[dict[str, Any]] = []
    if all_tags:
        found = engine.images(all=False, filters={"reference": [ref.repository]})
        if not found:
            raise InvalidInput(f"{what}: no local image of repository {ref.repository}")
    else:
        with user_named():
            engine.image(f"{ref.repository}:{tag}", what=what)
    registry = _registry_of(ref)
    auth = _auth(registry)
    tls = podman.tls_params(engine, registry)
    # Docker pushes every local tag of a repository named without one; podman pushes none
    # (its "all" is a manifest list's images): it is asked for each tag in turn, one stream.
    each = podman.local_tags(ref, found) if all_tags and engine.is_podman else [tag]

    def start() -> Iterator[dict[str, Any]]:
        for one in each:
            yield from daemon_lines(
                engine,
                "/images/{0}/push",
                {"tag": one, **tls},
                ref.repository,
                registry,
                auth=auth,
                json_body=True,
            )

    seen, attempts = _run(
        what, ref.repository, start, on_progress, policy or retry.TRANSFER, registry=registry
    )
    pushed = tuple(seen.tags.values())
    if engine.is_podman:
        # Its "size" is the local manifest's, not the pushed one's (579 said, 589 pushed):
        # no size rather than a wrong one.
        pushed = tuple(replace(item, size=None) for item in pushed)
    return TransferResult(
        action="push",
        reference=ref.repository if all_tags else f"{ref.repository}:{tag}",
        tags=pushed,
        layers=tuple(seen.layers),
        status=seen.status,
        attempts=attempts,
    )
