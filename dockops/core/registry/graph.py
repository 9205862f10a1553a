"""What each tag of a repository holds: its digest and, for an index (a docker manifest list or
an OCI index: a multi-arch image), the manifests it references.

registry:2 deletes by digest and knows nothing of these references: deleting a manifest that a
tagged index references leaves the index naming a manifest that is gone (its pull fails for
that platform). So deletes look here first. An index's images are pushed untagged, by digest,
into the same repository as the index, which is where they are looked up.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dockops.core.registry.browse import INDEX_TYPES, image_config, manifest
from dockops.core.registry.client import RegistryClient
from dockops.errors import InvalidInput
from dockops.units import parse_timestamp

WORKERS = 8


@dataclass(frozen=True)
class Tagged:
    tag: str
    digest: str
    # For an index: every manifest it references, at any depth, that the registry holds (an
    # index may list an index); () for an image.
    children: tuple[str, ...] = ()
    created: str | None = None  # an image's; an index's is its newest image's


def is_index(document: dict[str, Any]) -> bool:
    return document.get("mediaType") in INDEX_TYPES or "manifests" in document


def tagged(
    api: RegistryClient, repository: str, names: list[str], *, created: bool = False
) -> dict[str, Tagged]:
    """Each tag's digest and references, with the created times when asked (one more request
    per image, for its config).

    Raises:
        InvalidInput: a tag vanished meanwhile.
    """
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        found = pool.map(lambda tag: _tagged(api, repository, tag, created), names)
        return {t.tag: t for t in found}


def _tagged(api: RegistryClient, repository: str, tag: str, created: bool) -> Tagged:
    document, digest = manifest(api, repository, tag)
    if not is_index(document):
        when = image_config(api, repository, document).get("created") if created else None
        return Tagged(tag=tag, digest=digest, children=(), created=str(when) if when else None)
    children: list[str] = []
    times: list[str] = []
    _walk(api, repository, document, children, times, created)
    dated = [(stamp, text) for text in times if (stamp := parse_timestamp(text))]
    return Tagged(
        tag=tag, digest=digest, children=tuple(children), created=max(dated)[1] if dated else None
    )


def _walk(
    api: RegistryClient,
    repository: str,
    index: dict[str, Any],
    children: list[str],
    times: list[str],
    created: bool,
) -> None:
    """Add the manifests `index` references (depth first, each once) to `children`, and their
    created times to `times`. A reference the registry does not hold is skipped: nothing to
    keep or delete there."""
    for entry in index.get("manifests") or []:
        digest = str(entry.get("digest") or "")
        if not digest or digest in children:
            continue
        try:
            document, _ = manifest(api, repository, digest)
        except InvalidInput:  # 404: not in this repository
            continue
        children.append(digest)
        if is_index(document):
            _walk(api, repository, document, children, times, created)
        elif created and (when := image_config(api, repository, document).get("created")):
            times.append(str(when))
