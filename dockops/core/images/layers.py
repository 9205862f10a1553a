"""Which layers images are made of, and which they share: "layers are stacked and only the
changes are stored", made visible.

A layer is stored once per position in a stack: the engine keys it by its chain ID (its content
digest on top of the chain below it). Two images share a layer when they share its chain ID.

A layer's size is the engine's own, from the image's history: docker counts the layer's files
(a 3000-byte file is 3000 bytes), podman the layer as an uncompressed tar, headers and padding
included (the same file is 9216 bytes); podman's image Size adds its manifest and config.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.engine.errors import user_named

if TYPE_CHECKING:
    from dockops.engine.api import Engine


@dataclass(frozen=True)
class Layer:
    """One stored layer: `digest` is its content (diff ID), `chain_id` its identity in storage."""

    digest: str
    chain_id: str
    size: int
    created_by: str
    images: tuple[str, ...]


@dataclass(frozen=True)
class ImageLayers:
    reference: str
    id: str
    layers: tuple[str, ...]
    size: int
    shared_bytes: int
    unique_bytes: int


@dataclass(frozen=True)
class LayerReport:
    images: tuple[ImageLayers, ...]
    layers: tuple[Layer, ...]
    stored_bytes: int
    total_bytes: int


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Chain IDs of a stack of layers (image-spec): the first is its diff ID, each next one is
    sha256 of "<chain below> <diff ID>"."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            text = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(text).hexdigest())
    return chains


def _no_layer_hint(created_by: str) -> bool:
    # Dockerfile steps that only change config are recorded as "#(nop)"; ADD and COPY are not.
    text = created_by.upper()
    return "#(NOP)" in text and " ADD " not in text and " COPY " not in text


def layer_steps(steps: list[tuple[int, str]], layer_count: int) -> list[tuple[int, str]]:
    """Match history steps to layers.

    The history API gives a size per step and 0 for steps that made no layer, without saying
    which those are; the image has `layer_count` layers. Steps with a size are layers; among
    the zero-size ones, as many as needed are taken as "no layer", config-only (#(nop)) steps
    first, then the newest. Sizes come out right whichever zero-size step is picked.

    Args:
        steps: (size, created_by) per history step, oldest first.
        layer_count: the number of layers in the image's rootfs.

    Returns:
        (size, created_by) per layer, bottom first; padded with (0, "") if history is short.
    """
    extra = len(steps) - layer_count
    zero = [i for i, (size, _) in enumerate(steps) if size == 0]
    ranked = sorted(zero, key=lambda i: (not _no_layer_hint(steps[i][1]), -i))
    skipped = set(ranked[: max(extra, 0)])
    kept = [step for i, step in enumerate(steps) if i not in skipped][:layer_count]
    return kept + [(0, "")] * (layer_count - len(kept))


def image_layers(engine: Engine, references: list[str]) -> LayerReport:
    """Layers of each image, which of the images share each, and the bytes that sharing saves.

    Args:
        engine: the engine.
        references: image references or IDs (the same image twice counts once for sharing).

    Returns:
        Per image its layers (chain IDs, bottom first), size, shared and unique bytes; per layer
        its digest, size, the step that made it and the references holding it; the bytes stored
        (each layer once) and the bytes the images would take without sharing.

    Raises:
        InvalidInput: no such image.
        EngineRefused, EngineUnreachable: from the engine.
    """
    found: list[tuple[str, dict[str, Any], list[tuple[str, str, int, str]]]] = []
    for reference in references:
        with user_named("image", reference, f"layers {reference}"):
            image = engine.image(reference, what=f"layers {reference}")
            history = engine.history(image["Id"], what=f"layers {reference}")
        diff_ids = list((image.get("RootFS") or {}).get("Layers") or [])
        steps = [(int(h.get("Size") or 0), str(h.get("CreatedBy") or "")) for h in history]
        sized = layer_steps(steps[::-1], len(diff_ids))
        chains = chain_ids(diff_ids)
        rows = [
            (diff, chain, size, made_by)
            for diff, chain, (size, made_by) in zip(diff_ids, chains, sized, strict=True)
        ]
        found.append((reference, image, rows))

    holders: dict[str, dict[str, None]] = {}
    image_ids: dict[str, set[str]] = {}
    layers: dict[str, tuple[str, int, str]] = {}
    for reference, image, rows in found:
        for diff, chain, size, made_by in rows:
            holders.setdefault(chain, {})[reference] = None
            image_ids.setdefault(chain, set()).add(str(image["Id"]))
            layers.setdefault(chain, (diff, size, made_by))

    report_images = []
    for reference, image, rows in found:
        shared = sum(size for _, chain, size, _ in rows if len(image_ids[chain]) > 1)
        total = sum(size for _, _, size, _ in rows)
        report_images.append(
            ImageLayers(
                reference=reference,
                id=str(image["Id"]),
                layers=tuple(chain for _, chain, _, _ in rows),
                size=total,
                shared_bytes=shared,
                unique_bytes=total - shared,
            )
        )
    distinct_images = {str(image["Id"]): rows for _, image, rows in found}
    return LayerReport(
        images=tuple(report_images),
        layers=tuple(
            Layer(
                digest=diff,
                chain_id=chain,
                size=size,
                created_by=made_by,
                images=tuple(holders[chain]),
            )
            for chain, (diff, size, made_by) in layers.items()
        ),
        stored_bytes=sum(size for _, size, _ in layers.values()),
        total_bytes=sum(sum(r[2] for r in rows) for rows in distinct_images.values()),
    )
