"""Which member of an image archive is which, in every layout an engine writes: the one reader
the delta archives (the engine's stream cut, a base archive read) and the direct push (layers
read off the save stream) share.

- Docker up to 24 (moby's image/tarexport before v25): a layer is `<v1 id>/layer.tar`, named
  by a legacy v1 ID, so which layer it is is known only once its bytes are hashed (one saved
  twice is a symlink to the first); the config is `<image id>.json`.
- Docker 25 and later: an OCI layout beside the same manifest.json: `blobs/sha256/<digest>`
  holds the layer tars (uncompressed, so the digest is the diff ID), the config (the image
  ID), one legacy v1 config per layer and the OCI manifest; `index.json`, `oci-layout`.
- Podman (containers/image's docker-archive writer): each layer once at the top as
  `<diff id>.tar`, the config as `<image id>.json`, and per layer a `<v1 id>/layer.tar` that is
  a symlink to it.

manifest.json says which member is which, but in all three it comes after the layers: a
stream read once has to know a layer by its name. A name that is a digest is taken at its
word where that costs nothing if it lies (a delta leaves the member out; the engine's load
finds the layer missing); the direct push hashes what it uploads.
"""

from __future__ import annotations

import re

_HEX = "[0-9a-f]{64}"
_BLOB = re.compile(f"blobs/sha256/({_HEX})")
_TOP_TAR = re.compile(f"({_HEX})\\.tar")
_LEGACY_LAYER = re.compile(f"({_HEX})/layer\\.tar")

# What the delta record says of the archive it cut (delta_record.py): Podman's load reads a
# Docker 25+ archive as OCI, and a docker-archive only with every layer file in it.
DOCKER = "docker"  # moby before 25
DOCKER_OCI = "docker-oci"  # moby 25 and later
PODMAN = "podman"


def named_digest(name: str) -> str | None:
    """The digest ("sha256:…") a layer member's name says it holds: a blob of the OCI layout,
    or a layer at the top of Podman's; None for any other name."""
    found = _BLOB.fullmatch(name) or _TOP_TAR.fullmatch(name)
    return "sha256:" + found[1] if found else None


def may_be_layer(name: str) -> bool:
    """A regular member of this name may be a layer tar in some layout (a blob may also be a
    config or a manifest: only its digest tells)."""
    return named_digest(name) is not None or _LEGACY_LAYER.fullmatch(name) is not None


def config_names(image_id: str) -> tuple[str, str]:
    """Where the layouts keep an image's config: `<id>.json` (Docker up to 24, Podman), or its
    blob (Docker 25+)."""
    hexdigits = image_id.removeprefix("sha256:")
    return f"{hexdigits}.json", f"blobs/sha256/{hexdigits}"


def may_be_metadata(name: str) -> bool:
    """manifest.json, or a member that may be an image config."""
    return name.endswith(".json") or _BLOB.fullmatch(name) is not None


def label(name: str) -> str:
    """The short ID a layer member is shown by: its digest's, or its v1 ID's."""
    found = _BLOB.fullmatch(name) or _TOP_TAR.fullmatch(name) or _LEGACY_LAYER.fullmatch(name)
    return found[1][:12] if found else name[:12]


def layout_told(name: str) -> str | None:
    """The layout a member of this name belongs to only: DOCKER_OCI, PODMAN, or None (an
    archive in which no member tells is DOCKER's)."""
    if _BLOB.fullmatch(name) or name.rstrip("/") in ("blobs", "blobs/sha256", "oci-layout"):
        return DOCKER_OCI
    return PODMAN if _TOP_TAR.fullmatch(name) else None
