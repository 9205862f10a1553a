"""Layer matching (core/images/layers.py): chain IDs as the image spec computes them, and the
history steps that made a layer."""

from __future__ import annotations

import hashlib

from dockops.core.images.layers import chain_ids, layer_steps


def test_chain_ids_follow_the_image_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected]
    assert chain_ids([]) == []


def test_layer_steps_skip_steps_that_made_no_layer() -> None:
    steps = [
        (100, "ADD file:x in /"),
        (0, '/bin/sh -c #(nop)  CMD ["sh"]'),
        (0, "/bin/sh -c rm /etc/motd"),  # a whiteout-only layer: size 0, still a layer
        (50, "/bin/sh -c echo > /a"),
        (0, "/bin/sh -c #(nop)  ENV A=1"),
    ]
    assert layer_steps(steps, 3) == [steps[0], steps[2], steps[3]]
    assert layer_steps(steps[:1], 1) == steps[:1]
    assert layer_steps([], 2) == [(0, ""), (0, "")]
