"""The docker reference grammar, as the CLI checks it before any engine call."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockops.errors import InvalidInput
from dockops.reference import (
    Reference,
    parse_reference,
    validate_container,
    validate_image,
    validate_registry,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", Reference(None, "busybox")),
        ("busybox:1.36", Reference(None, "busybox", "1.36")),
        ("library/busybox:latest", Reference(None, "library/busybox", "latest")),
        ("localhost/app", Reference("localhost", "app")),
        ("localhost:5000/team/app:v1", Reference("localhost:5000", "team/app", "v1")),
        ("127.0.0.1:5000/app", Reference("127.0.0.1:5000", "app")),
        ("registry.example.com/a/b/c", Reference("registry.example.com", "a/b/c")),
        ("[::1]:5000/app:x", Reference("[::1]:5000", "app", "x")),
        (f"app@{DIGEST}", Reference(None, "app", None, DIGEST)),
        (f"app:v1@{DIGEST}", Reference(None, "app", "v1", DIGEST)),
        ("a__b.c-d---e", Reference(None, "a__b.c-d---e")),
        ("app:_x.y-Z", Reference(None, "app", "_x.y-Z")),
        ("myhost/app", Reference(None, "myhost/app")),
    ],
)
def test_valid_references_parse(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected
    assert str(parse_reference(text)) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        (" busybox", "spaces"),
        ("BusyBox", "lowercase"),
        ("busybox:", "bad tag"),
        ("busybox:-x", "bad tag"),
        ("busybox:" + "a" * 129, "bad tag"),
        ("busybox@sha256:abc", "bad digest"),
        ("busybox@", "bad digest"),
        ("-busybox", "bad repository name"),
        ("busy..box", "bad repository name"),
        ("busybox/", "bad repository name"),
        ("a//b", "bad repository name"),
        ("host:port/app", "bad registry address"),
        ("-bad.host/app", "bad registry address"),
        ("a" * 256, "longer than"),
    ],
)
def test_invalid_references_are_refused_with_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as info:
        parse_reference(text)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)


def test_image_ids_are_accepted_where_images_are() -> None:
    assert validate_image("0123456789ab") == "0123456789ab"
    assert validate_image(DIGEST) == DIGEST
    with pytest.raises(InvalidInput):
        validate_image("sha256:abc:def")


@pytest.mark.parametrize("name", ["web", "my_box.1", "a-b", "/web", "0123456789ab"])
def test_container_names(name: str) -> None:
    assert validate_container(name) == name


@pytest.mark.parametrize("name", ["", "-web", "we b", "web/x", "_x"])
def test_bad_container_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_container(name)


@pytest.mark.parametrize(
    "addr", ["localhost:5000", "127.0.0.1:443", "reg.example.com", "[::1]:5000"]
)
def test_registry_addresses(addr: str) -> None:
    assert validate_registry(addr) == addr


@pytest.mark.parametrize(
    "addr", ["https://reg:5000", "reg:5000/path", "reg:0", "reg:70000", "reg:", "", "re g"]
)
def test_bad_registry_addresses(addr: str) -> None:
    with pytest.raises(InvalidInput):
        validate_registry(addr)


component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True).filter(
    lambda s: len(s) < 40
)
tags = st.from_regex(r"[\w][\w.-]{0,20}", fullmatch=True).filter(str.isascii)
domains = st.sampled_from([None, "localhost", "localhost:5000", "127.0.0.1:5000", "reg.example.io"])


@given(domains, st.lists(component, min_size=1, max_size=3), st.none() | tags)
def test_generated_valid_references_round_trip(
    domain: str | None, parts: list[str], tag: str | None
) -> None:
    path = "/".join(parts)
    if domain is None and len(parts) > 1 and ("." in parts[0] or parts[0] == "localhost"):
        return  # that first component would read as a registry host, as in docker
    text = (f"{domain}/" if domain else "") + path + (f":{tag}" if tag else "")
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag) == (domain, path, tag)


@given(st.text(alphabet=string.printable + "é☃", max_size=80))
def test_any_text_is_either_a_reference_or_one_clear_error(text: str) -> None:
    try:
        parse_reference(text)
    except InvalidInput as exc:
        assert str(exc).startswith("invalid reference")
        assert "\n" not in str(exc).replace(repr(text), "")
