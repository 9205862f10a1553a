"""pull and push on Podman's Docker API (4.3), where it does not do what Docker's does.

- TLS: Docker treats 127.0.0.0/8 (and the insecure registries of daemon.json) as plain HTTP
  registries by default; podman verifies TLS for every registry unless the request says
  `tlsVerify=false`. dockops says it for the registries it treats as insecure itself
  (trust.is_insecure: loopback, as Docker does, and the ones the user listed).
- Pull: the compat `/images/create` takes no `tlsVerify` in 4.3 (its query is fromImage, tag,
  platform) and pulls one tag even for a repository, so pulls go through podman's own
  `/libpod/images/pull`, which takes both. Its stream is c/image's text ("Copying blob
  sha256:…") and ends with the pulled image IDs: no digest, no final status. The digest is the
  one podman recorded for the image (RepoDigests), asked of the registry when it holds several.
- Push: the compat push of a repository without a tag pushes nothing (a 404 for REPO:latest);
  its stream names no layer and has no aux line, only the closing "TAG: digest: D size: N".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dockops.core.registry.trust import is_insecure
from dockops.engine.errors import user_named
from dockops.errors import DockopsError, InvalidInput
from dockops.reference import Reference, parse_reference

if TYPE_CHECKING:
    from dockops.engine.api import Engine

LIBPOD_PULL = "/libpod/images/pull"

_BLOB = re.compile(r"^Copying blob (?:sha256:)?(?P<hex>[0-9a-f]{12,64})\b\s*(?P<rest>.*)$")


def tls_params(engine: Engine, registry: str) -> dict[str, str]:
    """The query that turns TLS verification off, for podman and a registry dockops treats as
    insecure; nothing otherwise (Docker decides by itself, and would not know the parameter)."""
    if engine.is_podman and is_insecure(registry):
        return {"tlsVerify": "false"}
    return {}


def pull_queries(ref: Reference, tag: str | None, registry: str) -> list[dict[str, str]]:
    """The libpod pulls that fetch `ref` at `tag` (a tag or a digest; None: every tag).

    The name is the canonical one (docker.io/library/busybox for busybox), as the compat
    endpoint would have made it: podman's own endpoint resolves short names by registries.conf.
    Every tag of a registry whose TLS dockops does not verify is one pull per tag, the tags
    listed by dockops: podman 4.3 lists them with TLS verification on, whatever tlsVerify says.
    """
    name = ref.canonical().repository
    insecure = {"tlsVerify": "false"} if is_insecure(registry) else {}
    if tag is None and not insecure:
        return [{"reference": name, "allTags": "true", "policy": "always"}]
    each = [tag] if tag is not None else _registry_tags(registry, ref.path)
    return [
        {"reference": f"{name}@{one}" if ":" in one else f"{name}:{one}", "policy": "always"}
        | insecure
        for one in each
    ]


def _registry_tags(registry: str, repository: str) -> list[str]:
    from dockops.core.registry.browse import tags
    from dockops.core.registry.client import registry_client

    with registry_client(registry) as api:
        return tags(api, repository)


def copied_blob(text: str) -> tuple[str, str] | None:
    """(short blob digest, status) of c/image's "Copying blob sha256:…" line; None for others."""
    found = _BLOB.match(text)
    if found is None:
        return None
    return found["hex"][:12], " ".join(("Copying blob", found["rest"])).strip()


def _same_repository(name: str, ref: Reference) -> Reference | None:
    """`name` (a RepoTag or RepoDigest) parsed, when it is of `ref`'s repository."""
    try:
        parsed = parse_reference(name)
    except InvalidInput:  # <none>:<none> and the like
        return None
    return parsed if parsed.familiar().repository == ref.familiar().repository else None


def _digest(image: Mapping[str, Any], ref: Reference, tag: str, registry: str) -> str | None:
    """The manifest digest of `ref`'s repository at `tag` that podman pulled for the image.

    podman records every manifest digest an image was ever seen with, under each of its names
    (a local build's own, those of earlier pulls and pushes): when `ref`'s repository has
    several, the one the registry now holds for `tag` is the one pulled, if it is among them.
    """
    held = []
    for name in image.get("RepoDigests") or ():
        parsed = _same_repository(str(name), ref)
        if parsed is not None and parsed.digest and parsed.digest not in held:
            held.append(parsed.digest)
    if len(held) < 2:
        return held[0] if held else None
    now = _registry_digest(registry, ref.canonical().path, tag)
    return now if now in held else None


def _registry_digest(registry: str, repository: str, tag: str) -> str | None:
    from dockops.core.registry.client import registry_client

    try:
        with registry_client(registry) as api:
            return api.manifest_digest(repository, tag)
    except DockopsError:  # it answered the pull a moment ago; now it is no help
        return None


def local_tags(ref: Reference, images: Iterable[Mapping[str, Any]]) -> list[str]:
    """The tags of `ref`'s repository that `images` (an image list) hold, sorted."""
    tags = set()
    for image in images:
        for name in image.get("RepoTags") or ():
            parsed = _same_repository(str(name), ref)
            if parsed is not None and parsed.tag:
                tags.add(parsed.tag)
    return sorted(tags)


def pulled_tags(
    engine: Engine,
    ref: Reference,
    registry: str,
    queries: list[dict[str, str]],
    pulled: tuple[str, ...],
    what: str,
) -> list[tuple[str, str | None, str]]:
    """What the libpod pulls of `queries` brought, as the compat stream would have said it:
    (tag or digest, its manifest digest, the local image ID) for each."""
    if any(query.get("allTags") for query in queries):
        ids = {i.removeprefix("sha256:") for i in pulled}
        found = [
            image
            for image in engine.images(
                all=False, filters={"reference": [ref.repository]}, what=what
            )
            if str(image["Id"]).removeprefix("sha256:") in ids
        ]
        return [
            (one, _digest(image, ref, one, registry), str(image["Id"]))
            for image in found
            for one in local_tags(ref, [image])
        ]
    done = []
    for query in queries:
        asked = parse_reference(query["reference"])
        one = asked.digest or asked.tag or "latest"
        local = f"{ref.repository}@{one}" if asked.digest else f"{ref.repository}:{one}"
        with user_named():
            image = engine.image(local, what=what)
        digest = asked.digest or _digest(image, ref, one, registry)
        done.append((one, digest, str(image["Id"])))
    return done
