"""The docker reference grammar, as the CLI checks it before any engine call."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockops.errors import InvalidInput
from dockops.reference import (
    Reference,
    familiar_name,
    is_image_id,
    parse_reference,
    qualified_id,
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
        ("app@sha384:" + "b" * 96, Reference(None, "app", None, "sha384:" + "b" * 96)),
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
        ("busybox@sha256:" + "A" * 64, "sha256 takes 64 lowercase hex digits"),
        ("busybox@md5:" + "a" * 32, "unsupported algorithm 'md5'"),
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
    "addr",
    [
        "https://reg:5000",
        "reg:5000/path",
        "reg:0",
        "reg:70000",
        "reg:" + "9" * 5000,  # more digits than int() takes from a string
        "reg:",
        "",
        "re g",
        "[fc00]",
    ],
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


# --- distribution/reference's own test tables ---------------------------------------------
# Every case of github.com/distribution/reference's reference_test.go, normalize_test.go and
# regexp_test.go, plus the cases only older copies have (reference/*_test.go in
# distribution/distribution and docker/distribution). Rows are dockops' expectations.
#
# Upstream's Parse reads any first component of several as a domain ("foo/bar" has domain
# "foo"); dockops reads a name as the docker CLI does (ParseNormalizedNamed's split), so
# "foo/bar" is Docker Hub's foo/bar and its domain is None. Rows where that, or anything
# else, makes dockops answer differently from the upstream row say so.

F64 = "f" * 64
SHA256_F = "sha256:" + F64
SHA512_F = "sha512:" + "f" * 128
SHA256_BE = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912"
SHA256_DB = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
SHA256_E6 = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"
SHORT_SHA256 = "sha256:1234567890098765432112345667890098765"  # 37 hex digits
HEX64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
LONG_NAMESPACE = "_".join(
    ["this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255"] * 4
)


def _id(text: str) -> str:
    if not text:
        return "<empty>"
    return text if len(text) <= 60 else f"{text[:40]}…({len(text)} chars)"


def ok(
    text: str,
    domain: str | None,
    path: str,
    tag: str | None = None,
    digest: str | None = None,
) -> object:
    return pytest.param(text, Reference(domain, path, tag, digest), id=_id(text))


def bad(text: str, why: str) -> object:
    return pytest.param(text, why, id=_id(text))


UPSTREAM_VALID = [
    # reference_test.go TestReferenceParse
    ok("test_com", None, "test_com"),
    ok("test.com:tag", None, "test.com", "tag"),
    ok("test.com:5000", None, "test.com", "5000"),
    ok("test.com/repo:tag", "test.com", "repo", "tag"),
    ok("test:5000/repo", "test:5000", "repo"),
    ok("test:5000/repo:tag", "test:5000", "repo", "tag"),
    ok(f"test:5000/repo@{SHA256_F}", "test:5000", "repo", None, SHA256_F),
    ok(f"test:5000/repo:tag@{SHA256_F}", "test:5000", "repo", "tag", SHA256_F),
    ok("lowercase:Uppercase", None, "lowercase", "Uppercase"),
    # Upstream's domain is "a"; the docker CLI reads "a" as a Docker Hub namespace.
    ok("a/" * 127 + "a:tag-puts-this-over-max", None, "a/" * 127 + "a", "tag-puts-this-over-max"),
    ok("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux"),
    ok(
        "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
        "sub-dom1.foo.com",
        "bar/baz/quux",
        "some-long-tag",
    ),
    ok(
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io",
        "test.example.com/my-app",
        "test.example.com",
    ),
    ok("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com"),
    ok(
        f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512_F}",
        "xn--7o8h.com",
        "myimage",
        "xn--7o8h.com",
        SHA512_F,
    ),
    ok("foo_bar.com:8080", None, "foo_bar.com", "8080"),
    # Upstream's domain is "foo"; the docker CLI reads it as a Docker Hub namespace.
    ok("foo/foo_bar.com:8080", None, "foo/foo_bar.com", "8080"),
    ok("192.168.1.1", None, "192.168.1.1"),
    ok("192.168.1.1:tag", None, "192.168.1.1", "tag"),
    ok("192.168.1.1:5000", None, "192.168.1.1", "5000"),
    ok("192.168.1.1/repo", "192.168.1.1", "repo"),
    ok("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo"),
    ok("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050"),
    ok("[2001:db8::1]/repo", "[2001:db8::1]", "repo"),
    ok("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag"),
    ok("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo"),
    ok("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag"),
    ok(f"[2001:db8::1]:5000/repo@{SHA256_F}", "[2001:db8::1]:5000", "repo", None, SHA256_F),
    ok(f"[2001:db8::1]:5000/repo:tag@{SHA256_F}", "[2001:db8::1]:5000", "repo", "tag", SHA256_F),
    ok("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo"),
    ok("[::1]:5000/repo", "[::1]:5000", "repo"),
    # Commented out upstream as a FIXME: an uppercase first component reads as a domain.
    ok("Uppercase/lowercase:tag", "Uppercase", "lowercase", "tag"),
    # docker/distribution's copy: IPv6 hosts
    ok(
        "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]/repo",
        "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]",
        "repo",
    ),
    ok("[2001:0db8:85a3:0:0:8a2e:0370:7334]/repo", "[2001:0db8:85a3:0:0:8a2e:0370:7334]", "repo"),
    ok("[2001:0db8:85a3::8a2e:0370:7334]/repo", "[2001:0db8:85a3::8a2e:0370:7334]", "repo"),
    ok("[::]/repo", "[::]", "repo"),
    ok("[fc00::1]/repo", "[fc00::1]", "repo"),
    ok("[fc00::1]/repo:tag", "[fc00::1]", "repo", "tag"),
    ok("[fc00::1]:5000/repo", "[fc00::1]:5000", "repo"),
    ok("[fc00::1]:5000/repo:tag", "[fc00::1]:5000", "repo", "tag"),
    ok(f"[fc00::1]:5000/repo@{SHA256_F}", "[fc00::1]:5000", "repo", None, SHA256_F),
    ok(f"[fc00::1]:5000/repo:tag@{SHA256_F}", "[fc00::1]:5000", "repo", "tag", SHA256_F),
    ok("[fc00::]:5000/repo", "[fc00::]:5000", "repo"),
    # docker/distribution's branch parsed the address and refused these; distribution/reference
    # takes any hex and colons in brackets, and so does the engine, so a reference takes them.
    # As a registry address on its own, dockops refuses them (REGISTRY_ADDRESSES below).
    ok("[fc00::1::1]/repo", "[fc00::1::1]", "repo"),
    ok("[::fc00:1:1::]/repo", "[::fc00:1:1::]", "repo"),
    ok("[fc00::00001]/repo", "[fc00::00001]", "repo"),
    ok("[:::]/repo", "[:::]", "repo"),
    # reference_test.go TestWithNameFailure: WithName takes a bare name and refuses a tag;
    # dockops parses whole references, so the tag reads as a tag.
    ok("example.com/repo:tag", "example.com", "repo", "tag"),
    # reference_test.go TestDomainAndPath (TestSplitHostname in older copies)
    ok("test.com/foo", "test.com", "foo"),
    ok("test_com/foo", None, "test_com/foo"),
    ok("test:8080/foo", "test:8080", "foo"),
    ok("test.com:8080/foo", "test.com:8080", "foo"),
    ok("test-com:8080/foo", "test-com:8080", "foo"),
    ok("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
    # reference_test.go TestSerialization
    ok("example.com:8000/named", "example.com:8000", "named"),
    ok("example.com:8000/named:tagged", "example.com:8000", "named", "tagged"),
    ok(
        "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
        "other.com",
        "named",
        None,
        "sha256:1234567890098765432112345667890098765432112345667890098765432112",
    ),
    # reference_test.go TestWithTag
    ok("test.com/foo:tag", "test.com", "foo", "tag"),
    ok("foo:tag2", None, "foo", "tag2"),
    ok("test.com:8000/foo:tag4", "test.com:8000", "foo", "tag4"),
    ok("test.com:8000/foo:TAG5", "test.com:8000", "foo", "TAG5"),
    # normalize_test.go TestMatch: glob matching of familiar names, which dockops has no
    # counterpart for; its references are parsed here.
    ok("foo", None, "foo"),
    ok("foo/any/bat", None, "foo/any/bat"),
    ok("foo/a/bar", None, "foo/a/bar"),
    ok("foo/b/baz", None, "foo/b/baz"),
    ok("foo/c/baz:tag", None, "foo/c/baz", "tag"),
    ok("example.com/foo/c/baz:tag", "example.com", "foo/c/baz", "tag"),
    # regexp_test.go TestFullNameRegexp (upstream's domain column for "simple/name" and the
    # like is the first component; dockops reads those as Docker Hub namespaces)
    ok("short", None, "short"),
    ok("simple/name", None, "simple/name"),
    ok("library/ubuntu", None, "library/ubuntu"),
    ok("docker/stevvooe/app", None, "docker/stevvooe/app"),
    ok(
        "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb",
        None,
        "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb",
    ),
    ok("aa/aa/bb/bb/bb", None, "aa/aa/bb/bb/bb"),
    ok("a/a/a/a", None, "a/a/a/a"),
    ok("a", None, "a"),
    ok("a/aa", None, "a/aa"),
    ok("a/aa/a", None, "a/aa/a"),
    ok("foo.com", None, "foo.com"),
    ok("foo.com:8080/bar", "foo.com:8080", "bar"),
    ok("foo.com/bar", "foo.com", "bar"),
    ok("foo.com/bar/baz", "foo.com", "bar/baz"),
    ok("localhost:8080/bar", "localhost:8080", "bar"),
    ok("blog.foo.com/bar/baz", "blog.foo.com", "bar/baz"),
    ok("aa-a/a", None, "aa-a/a"),
    ok("foo_bar", None, "foo_bar"),
    ok("foo_bar.com", None, "foo_bar.com"),
    ok("foo.com/foo_bar", "foo.com", "foo_bar"),
    ok("xn--n3h.com/myimage", "xn--n3h.com", "myimage"),
    ok("xn--7o8h.com/myimage", "xn--7o8h.com", "myimage"),
    ok("example.com/xn--7o8h.com/myimage", "example.com", "xn--7o8h.com/myimage"),
    ok(
        "example.com/some_separator__underscore/myimage",
        "example.com",
        "some_separator__underscore/myimage",
    ),
    ok("do__cker/docker", None, "do__cker/docker"),
    ok(
        "registry.io/foo/project--id.module--name.ver---sion--name",
        "registry.io",
        "foo/project--id.module--name.ver---sion--name",
    ),
    ok("Asdf.com/foo/bar", "Asdf.com", "foo/bar"),
    # Not a name (upstream's row says no match), but a reference: 8080 is its tag.
    ok("foo_bar.com:8080", None, "foo_bar.com", "8080"),
    # regexp_test.go TestReferenceRegexp
    ok("registry.com:8080/myapp:tag", "registry.com:8080", "myapp", "tag"),
    ok(f"registry.com:8080/myapp@{SHA256_BE}", "registry.com:8080", "myapp", None, SHA256_BE),
    ok(
        f"registry.com:8080/myapp:tag2@{SHA256_BE}",
        "registry.com:8080",
        "myapp",
        "tag2",
        SHA256_BE,
    ),
    ok(f"localhost:8080@{SHA256_BE}", None, "localhost", "8080", SHA256_BE),
    ok(f"localhost:8080/name@{SHA256_BE}", "localhost:8080", "name", None, SHA256_BE),
    ok(f"localhost@{SHA256_BE}", None, "localhost", None, SHA256_BE),
]


UPSTREAM_INVALID = [
    # reference_test.go TestReferenceParse
    bad("", "empty"),
    bad(":justtag", "bad repository name"),
    bad(f"@{SHA256_F}", "bad repository name"),
    bad("repo@sha256:" + "f" * 34, "sha256 takes 64"),
    bad(f"validname@invaliddigest:{F64}", "unsupported algorithm 'invaliddigest'"),
    bad("Uppercase:tag", "must be lowercase"),
    bad("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    bad("a/" * 128 + "a:tag", "longer than 255"),
    bad("domain/" + "a" * 256 + ":tag", "longer than 255"),
    # Valid upstream since distribution/reference v0.6 counts the path alone; engines before it
    # (docker 20.10 among them) count the whole name, and so does dockops: 267 characters.
    bad("example.com/" + "a" * 255 + ":tag", "longer than 255"),
    bad("aa/asdf$$^/aa", "bad repository name"),
    # The last ":" reads as a tag's, as it does in docker.
    bad("[2001:db8::1]", "bad tag"),
    bad("[2001:db8::1]:5000", "bad repository name"),
    bad("[2001:db8::1]:tag", "bad repository name"),
    bad("[fe80::1%eth0]:5000/repo", "bad registry address"),
    bad("[fe80::1%@invalidzone]:5000/repo", "bad digest"),
    # docker/distribution's copy: IPv6 hosts. Its branch allowed zones and a dotted IPv4
    # tail ("[fc00::1%eth0]", "[fc00::192.168.134.145]"); distribution/reference refuses
    # both, and so does dockops.
    bad("[fc00::1]:tag", "bad repository name"),
    bad("[fc00::1]:5000", "bad repository name"),
    bad("[fc00::1%@invalidzone]:5000/repo", "bad digest"),
    bad("[fc00::192.168.134.145]/repo", "bad registry address"),
    bad("[fc00::192.168.134.145%eth0]/repo", "bad registry address"),
    bad("[fc00::1%eth0]:5000/repo", "bad registry address"),
    # No "." or ":" in brackets alone: the docker CLI reads a Docker Hub namespace.
    bad("[someinvalidstring]/repo", "bad repository name"),
    bad("[fc00]/repo", "bad repository name"),
    # distribution/distribution's older copy took a sha512 of 64 hex digits (its digest
    # package did not check lengths then); the later table uses 128, which Parse demands.
    bad(f"xn--7o8h.com/myimage:xn--7o8h.com@sha512:{F64}", "sha512 takes 128"),
    # reference_test.go TestWithNameFailure (the rest are rows of TestReferenceParse)
    bad("example.com/" + "a" * 256, "longer than 255"),
    # reference_test.go TestDomainAndPath, docker/distribution's copy: a zone, see above.
    bad("[fc00::1%eth0]:8080/foo", "bad registry address"),
    # TestSerialization in distribution/distribution's older copy, and TestWithTag and
    # TestWithDigest: WithDigest checks only the digest grammar; Parse, which the docker CLI
    # uses and dockops mirrors, also checks a sha256 has 64 hex digits.
    bad(f"other.com/named@{SHORT_SHA256}", "sha256 takes 64"),
    bad(f"test.com:8000/foo:TAG5@{SHORT_SHA256}", "sha256 takes 64"),
    bad(f"test.com/foo@{SHORT_SHA256}", "sha256 takes 64"),
    bad(f"foo@{SHORT_SHA256}", "sha256 takes 64"),
    bad(f"test.com:8000/foo@{SHORT_SHA256}", "sha256 takes 64"),
    bad(f"test.com:8000/foo:latest@{SHORT_SHA256}", "sha256 takes 64"),
    # normalize_test.go TestInvalidReferenceComponents
    bad("-foo", "bad repository name"),
    bad("busybox:-foo", "bad tag"),
    bad("busybox@foo", "bad digest"),
    # regexp_test.go TestFullNameRegexp
    bad("a/a/a/a/", "bad repository name"),
    bad("a//a/a", "bad repository name"),
    bad("foo.com/", "bad repository name"),
    bad("foo.com:http/bar", "bad registry address"),
    bad("a^a", "bad repository name"),
    bad("asdf$$^/aa", "bad repository name"),
    bad("a-/a/a/a", "bad repository name"),
    bad("foo.com/a-/a/a", "bad repository name"),
    bad("-foo/bar", "bad repository name"),
    bad("foo/bar-", "bad repository name"),
    bad("foo-/bar", "bad repository name"),
    bad("foo/-bar", "bad repository name"),
    bad("_foo/bar", "bad repository name"),
    bad("foo_bar.com:8080/app", "bad registry address"),
    bad("____/____", "bad repository name"),
    bad("_docker/_docker", "bad repository name"),
    bad("docker_/docker_", "bad repository name"),
    bad("example.com/__underscore/myimage", "bad repository name"),
    bad("example.com/..dots/myimage", "bad repository name"),
    bad("example.com/.dots/myimage", "bad repository name"),
    bad("example.com/nodouble..dots/myimage", "bad repository name"),
    bad("docker./docker", "bad registry address"),
    bad(".docker/docker", "bad registry address"),
    bad("docker-/docker", "bad repository name"),
    bad("-docker/docker", "bad repository name"),
    bad("do..cker/docker", "bad registry address"),
    bad("do__cker:8080/docker", "bad registry address"),
    bad("Foo/FarB", "must be lowercase"),
    # Upstream's name regexp has no length rule (its row matches); the name has 257 characters.
    bad("a/" * 128 + "a", "longer than 255"),
    # regexp_test.go TestReferenceRegexp
    bad("registry.com:8080/myapp@sha256:badbadbadbad", "bad digest"),
    bad("registry.com:8080/myapp:invalid~tag", "bad tag"),
    bad("bad_hostname.com:8080/myapp:tag", "bad registry address"),
    bad(f"localhost:http/name@{SHA256_BE}", "bad registry address"),
    bad("registry.com:8080/myapp@bad", "bad digest"),
    bad("registry.com:8080/myapp@2bad", "bad digest"),
]


@pytest.mark.parametrize(("text", "expected"), UPSTREAM_VALID)
def test_upstream_valid_references(text: str, expected: Reference) -> None:
    ref = parse_reference(text)
    assert ref == expected
    assert str(ref) == text


@pytest.mark.parametrize(("text", "why"), UPSTREAM_INVALID)
def test_upstream_invalid_references(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(why)) as info:
        parse_reference(text)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)


# normalize_test.go TestValidateReferenceName and TestValidateRemoteName: upstream asks only
# whether ParseNormalizedNamed accepts each name.
ACCEPTED_NAMES = [
    "docker/docker",
    "library/debian",
    "debian",
    "docker.io/docker/docker",
    "docker.io/library/debian",
    "docker.io/debian",
    "index.docker.io/docker/docker",
    "index.docker.io/library/debian",
    "index.docker.io/debian",
    "127.0.0.1:5000/docker/docker",
    "127.0.0.1:5000/library/debian",
    "127.0.0.1:5000/debian",
    "192.168.0.1",
    "192.168.0.1:80",
    "192.168.0.1:8/debian",
    "192.168.0.2:25000/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    "[fc00::1]:5000/docker",
    "[fc00::1]:5000/docker/docker",
    "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    f"docker.io/{HEX64}",
    "Docker/docker",
    "DOCKER/docker",
    "docker-rules/docker",
    "docker---rules/docker",
    "doc/docker",
    "d/docker",
    "jess/t",
    "dock__er/docker",
]


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_upstream_accepted_names(name: str) -> None:
    assert str(parse_reference(name)) == name


REFUSED_NAMES = [
    bad("https://github.com/docker/docker", "bad registry address"),
    bad("docker/Docker", "must be lowercase"),
    bad("-docker", "bad repository name"),
    bad("-docker/docker", "bad repository name"),
    bad("-docker.io/docker/docker", "bad registry address"),
    bad("docker///docker", "bad repository name"),
    bad("docker.io/docker/Docker", "must be lowercase"),
    bad("docker.io/docker///docker", "bad repository name"),
    bad("[fc00::1]", "bad tag"),
    bad("[fc00::1]:5000", "bad repository name"),
    bad("fc00::1:5000/debian", "bad registry address"),
    bad("[fe80::1%eth0]:5000/debian", "bad registry address"),
    bad("[2001:db8:3:4::192.0.2.33]:5000/debian", "bad registry address"),
    bad(HEX64, "image ID"),
    bad("docker-/docker", "bad repository name"),
    bad("-docker-/docker", "bad repository name"),
    bad("____/____", "bad repository name"),
    bad("_docker/_docker", "bad repository name"),
    # A "." makes the first component a registry host, as in the docker CLI.
    bad("dock..er/docker", "bad registry address"),
    bad("dock_.er/docker", "bad registry address"),
    bad("dock-.er/docker", "bad registry address"),
    bad("docker/", "bad repository name"),
    bad(f"{LONG_NAMESPACE}/docker", "longer than 255"),
    # docker/distribution's copy accepted zones in these; see the IPv6 rows above.
    bad("[fc00::1%eth0]:5000/docker/docker", "bad registry address"),
    bad("[fc00::1%eth0]:5000/library/debian", "bad registry address"),
    bad("[fc00::1%eth0]:5000/debian", "bad registry address"),
]


@pytest.mark.parametrize(("text", "why"), REFUSED_NAMES)
def test_upstream_refused_names(text: str, why: str) -> None:
    test_upstream_invalid_references(text, why)


# normalize_test.go TestParseRepositoryInfo:
# (remote name, familiar name, full name, ambiguous name or None, domain)
REPOSITORY_INFO = [
    ("fooo/bar", "fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar", "docker.io"),
    ("library/ubuntu", "ubuntu", "docker.io/library/ubuntu", "library/ubuntu", "docker.io"),
    ("nonlibrary/ubuntu", "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", None, "docker.io"),
    ("other/library", "other/library", "docker.io/other/library", None, "docker.io"),
    (
        "private/moonbase",
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000/private/moonbase",
        None,
        "127.0.0.1:8000",
    ),
    (
        "privatebase",
        "127.0.0.1:8000/privatebase",
        "127.0.0.1:8000/privatebase",
        None,
        "127.0.0.1:8000",
    ),
    (
        "private/moonbase",
        "example.com/private/moonbase",
        "example.com/private/moonbase",
        None,
        "example.com",
    ),
    ("privatebase", "example.com/privatebase", "example.com/privatebase", None, "example.com"),
    (
        "private/moonbase",
        "example.com:8000/private/moonbase",
        "example.com:8000/private/moonbase",
        None,
        "example.com:8000",
    ),
    (
        "privatebasee",
        "example.com:8000/privatebasee",
        "example.com:8000/privatebasee",
        None,
        "example.com:8000",
    ),
    (
        "library/ubuntu-12.04-base",
        "ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        "index.docker.io/library/ubuntu-12.04-base",
        "docker.io",
    ),
    ("library/foo", "foo", "docker.io/library/foo", "docker.io/foo", "docker.io"),
    ("library/foo/bar", "library/foo/bar", "docker.io/library/foo/bar", None, "docker.io"),
    ("store/foo/bar", "store/foo/bar", "docker.io/store/foo/bar", None, "docker.io"),
    ("bar", "Foo/bar", "Foo/bar", None, "Foo"),
    ("bar", "FOO/bar", "FOO/bar", None, "FOO"),
]


@pytest.mark.parametrize(
    ("text", "remote", "familiar", "full", "domain"),
    [
        pytest.param(text, remote, familiar, full, domain, id=text)
        for remote, familiar, full, ambiguous, domain in REPOSITORY_INFO
        for text in (familiar, full, ambiguous)
        if text is not None
    ],
)
def test_upstream_repository_info(
    text: str, remote: str, familiar: str, full: str, domain: str
) -> None:
    ref = parse_reference(text)
    assert (ref.canonical().domain, ref.canonical().path) == (domain, remote)
    assert str(ref.canonical()) == full
    assert str(ref.familiar()) == familiar


# normalize_test.go TestNormalizedSplitHostname
@pytest.mark.parametrize(
    ("text", "domain", "path"),
    [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    ],
)
def test_upstream_normalized_split_hostname(text: str, domain: str, path: str) -> None:
    full = parse_reference(text).canonical()
    assert (full.domain, full.path) == (domain, path)


# reference_test.go TestParseNamed: ParseNamed accepts only a name already in canonical form.
@pytest.mark.parametrize(
    ("text", "is_canonical"),
    [
        ("test.com/foo", True),
        ("test:8080/foo", True),
        ("test_com/foo", False),
        ("test.com", False),
        ("foo", False),
        ("library/foo", False),
        ("docker.io/library/foo", True),
        ("docker.io/foo", False),  # ambiguous: reads as docker.io/library/foo
    ],
)
def test_upstream_parse_named(text: str, is_canonical: bool) -> None:
    assert (str(parse_reference(text).canonical()) == text) is is_canonical


def test_upstream_reference_with_tag_and_digest() -> None:
    # normalize_test.go TestParseReferenceWithTagAndDigest
    short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    ref = parse_reference(short)
    assert str(ref.canonical()) == f"docker.io/library/{short}"
    assert ref.tag == "latest"
    assert ref.digest
    assert str(ref.familiar()) == short


# normalize_test.go TestParseDockerRef. Upstream also adds ":latest" to a bare name and drops
# the tag beside a digest (containerd's convention); dockops leaves the tag as written and
# lets the engine apply its default, so those rows here lack upstream's last step.
@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("busybox", "docker.io/library/busybox"),  # upstream adds :latest
        ("busybox:latest", "docker.io/library/busybox:latest"),
        (f"busybox@{SHA256_E6}", f"docker.io/library/busybox@{SHA256_E6}"),
        ("library/busybox", "docker.io/library/busybox"),  # upstream adds :latest
        ("docker.io/busybox", "docker.io/library/busybox"),  # upstream adds :latest
        ("docker.io/library/busybox", "docker.io/library/busybox"),  # upstream adds :latest
        ("docker.io/busybox:latest", "docker.io/library/busybox:latest"),
        ("library/busybox:latest", "docker.io/library/busybox:latest"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
        ("gcr.io/library/busybox", "gcr.io/library/busybox"),  # upstream adds :latest
        (
            f"gcr.io/library/busybox:latest@{SHA256_E6}",
            f"gcr.io/library/busybox:latest@{SHA256_E6}",  # upstream drops :latest
        ),
    ],
)
def test_upstream_parse_docker_ref(text: str, full: str) -> None:
    assert str(parse_reference(text).canonical()) == full


# normalize_test.go TestParseAnyReference: a 64-hex string or a sha256 digest is an image ID
# (upstream: a digest reference); anything else is a name, normalized as upstream's
# Equivalent. docker/distribution's copy also resolved short hex against a set of local
# digests (ParseAnyReferenceWithSet): dockops leaves that lookup to the engine, and
# validate_image passes such text through.
@pytest.mark.parametrize(
    ("text", "equivalent"),
    [
        ("redis", "docker.io/library/redis"),
        ("redis:latest", "docker.io/library/redis:latest"),
        ("docker.io/library/redis:latest", "docker.io/library/redis:latest"),
        (f"redis@{SHA256_DB}", f"docker.io/library/redis@{SHA256_DB}"),
        (f"docker.io/library/redis@{SHA256_DB}", f"docker.io/library/redis@{SHA256_DB}"),
        ("dmcgowan/myapp", "docker.io/dmcgowan/myapp"),
        ("dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"),
        ("docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest"),
        (f"dmcgowan/myapp@{SHA256_DB}", f"docker.io/dmcgowan/myapp@{SHA256_DB}"),
        (f"docker.io/dmcgowan/myapp@{SHA256_DB}", f"docker.io/dmcgowan/myapp@{SHA256_DB}"),
        (SHA256_DB.removeprefix("sha256:"), SHA256_DB),
        (SHA256_DB, SHA256_DB),
        (SHA256_DB[7:-1], f"docker.io/library/{SHA256_DB[7:-1]}"),
        ("dbcc1", "docker.io/library/dbcc1"),
        ("dbcc1c", "docker.io/library/dbcc1c"),
    ],
)
def test_upstream_parse_any_reference(text: str, equivalent: str) -> None:
    assert validate_image(text) == text
    if equivalent.startswith("sha256:"):
        assert is_image_id(text)
    else:
        assert str(parse_reference(text).canonical()) == equivalent


# regexp_test.go TestIdentifierRegexp: (text, upstream identifier?, dockops image ID?).
# Upstream's identifier is exactly 64 lowercase hex digits, and a name cannot be one.
# dockops' image IDs also take a short prefix (12 or more) and the sha256: form, as the
# engine does.
@pytest.mark.parametrize(
    ("text", "identifier", "image_id"),
    [
        ("da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821", True, True),
        ("7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C", False, False),
        ("da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf", False, True),
        ("sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821", False, True),
        ("da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482", False, False),
    ],
)
def test_upstream_identifiers(text: str, identifier: bool, image_id: bool) -> None:
    assert is_image_id(text) is image_id
    try:
        parse_reference(text)
        refused_as_id = False
    except InvalidInput as exc:
        refused_as_id = "image ID" in str(exc)
    assert refused_as_id is identifier


# regexp_test.go TestDomainRegexp, as registry addresses: (address, None or why refused).
# Upstream's grammar takes any digits for a port and any hex in brackets ("it will fail on
# validation"); a registry address given on its own gets that validation here, so those rows
# are refused as addresses, though a reference takes them as the engine does.
GRAMMAR = "expected HOST or HOST:PORT"
REGISTRY_ADDRESSES = [
    ("test.com", None),
    ("test.com:10304", None),
    ("test.com:http", GRAMMAR),
    ("localhost", None),
    ("localhost:8080", None),
    ("a", None),
    ("a.b", None),
    ("ab.cd.com", None),
    ("a-b.com", None),
    ("-ab.com", GRAMMAR),
    ("ab-.com", GRAMMAR),
    ("ab.c-om", None),
    ("ab.-com", GRAMMAR),
    ("ab.com-", GRAMMAR),
    ("0101.com", None),
    ("001a.com", None),
    ("b.gbc.io:443", None),
    ("b.gbc.io", None),
    ("xn--n3h.com", None),
    ("Asdf.com", None),
    ("192.168.1.1:75050", "port out of range"),  # upstream grammar: match
    ("192.168.1.1:750050", "port out of range"),  # upstream grammar: match
    ("[fd00:1:2::3]:75050", "port out of range"),  # upstream grammar: match
    ("[fd00:1:2::3]75050", GRAMMAR),
    ("[fd00:1:2::3]::75050", GRAMMAR),
    ("[fd00:1:2::3%eth0]:75050", GRAMMAR),
    ("[fd00123123123]:75050", "not an IPv6 address"),  # upstream grammar: match
    ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", "port out of range"),  # match
    ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", "port out of range"),  # match
    ("fd00:1:2::3:75050", GRAMMAR),
    # docker/distribution's IPv6 rows (reference_test.go), as addresses
    ("[fc00::1::1]", "not an IPv6 address"),
    ("[::fc00:1:1::]", "not an IPv6 address"),
    ("[fc00::00001]", "not an IPv6 address"),
    ("[:::]", "not an IPv6 address"),
    ("[::]", None),
    ("[fc00::1]:5000", None),
]


@pytest.mark.parametrize(("addr", "why"), REGISTRY_ADDRESSES)
def test_upstream_registry_addresses(addr: str, why: str | None) -> None:
    if why is None:
        assert validate_registry(addr) == addr
    else:
        with pytest.raises(InvalidInput, match=re.escape(why)):
            validate_registry(addr)


@pytest.mark.parametrize(("addr", "why"), REGISTRY_ADDRESSES)
def test_reference_domains_take_what_the_engine_grammar_takes(addr: str, why: str | None) -> None:
    text = f"{addr}/repo"
    if why == GRAMMAR:
        with pytest.raises(InvalidInput, match="bad registry address"):
            parse_reference(text)
    else:
        assert parse_reference(text).repository == text


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/team/app:1", "team/app:1"),
        (f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        ("localhost/app:1", "localhost/app:1"),
        ("r:5000/app:1", "r:5000/app:1"),
        ("busybox:latest", "busybox:latest"),
        ("<none>:<none>", "<none>:<none>"),
    ],
)
def test_familiar_name_shows_an_engine_s_name_as_docker_does(stored: str, shown: str) -> None:
    assert familiar_name(stored) == shown


def test_qualified_id_adds_the_algorithm_podman_leaves_out() -> None:
    assert qualified_id("a" * 64) == "sha256:" + "a" * 64
    assert qualified_id("sha256:" + "a" * 64) == "sha256:" + "a" * 64
    assert qualified_id("abc") == "abc"
