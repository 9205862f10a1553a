"""Docker reference grammar (distribution/reference), checked before any engine call.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path                 ; at most 255 characters
    domain     := host [ ":" [0-9]+ ]
    host       := domain-name | "[" [0-9a-fA-F:]+ "]" ; no zone, no dotted IPv4 tail
    path       := path-component { "/" path-component }
    path-comp  := [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex                   ; sha256, sha384 or sha512, full length

The first component is a domain only when it holds "." or ":", is "localhost", or has an
uppercase letter, as the docker CLI decides; "myhost/app" is the repository myhost/app on
Docker Hub. A reference is kept as written: `canonical()` gives the docker.io/library/ form.

References take exactly what the engine's grammar takes; a registry address given on its own
(validate_registry) must also be one dockops can connect to: a real IPv6 address, a port 1-65535.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from dockops.errors import InvalidInput

# Composed as distribution/reference's regexp.go composes its own, piece by piece.
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_NAME_COMPONENT}(?:\.{_DOMAIN_NAME_COMPONENT})*"
_IPV6_ADDRESS = r"\[(?P<ipv6>[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})"
_DIGEST_ALGORITHM = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
_GRAMMAR = {
    "domain": rf"{_HOST}(?::(?P<port>[0-9]+))?",
    "path": rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*",
    "tag": r"(?a)[\w][\w.-]{0,127}",
    "digest": rf"(?P<algorithm>{_DIGEST_ALGORITHM}):(?P<hex>[0-9a-fA-F]{{32,}})",
    "identifier": r"[a-f0-9]{64}",
    "id": r"(?:sha256:)?[0-9a-f]{12,64}",
    "container": r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]*",
}


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    # Compiled on first use: every command imports this module, few need every pattern.
    return re.compile(_GRAMMAR[name])


def _match(name: str, text: str) -> re.Match[str] | None:
    return _pattern(name).fullmatch(text)


_NAME_MAX = 255
_PORT_MAX = 65535
# The algorithms go-digest registers in docker, and the hex length each must have.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_HUB = "docker.io"
_HUB_NAMES = frozenset({_HUB, "index.docker.io"})
_OFFICIAL = "library/"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; `domain` is None when the reference names none (Docker Hub)."""

    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def canonical(self) -> Reference:
        """The full name docker stores: busybox is docker.io/library/busybox.

        Other registries are left as written; no default tag is added.
        """
        if self.domain is not None and self.domain not in _HUB_NAMES:
            return self
        path = self.path if "/" in self.path else _OFFICIAL + self.path
        return dataclasses.replace(self, domain=_HUB, path=path)

    def familiar(self) -> Reference:
        """The short name docker prints: docker.io/library/busybox is busybox."""
        full = self.canonical()
        if full.domain != _HUB:
            return full
        short = full.path.removeprefix(_OFFICIAL)
        # library/a/b keeps its prefix: only a one-component official name is shortened.
        path = short if "/" not in short else full.path
        return dataclasses.replace(full, domain=None, path=path)


def _split_domain(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return None, name


def _address_problem(address: str) -> str | None:
    """Why `address` is no registry address to connect to, or None when it is one."""
    match = _match("domain", address)
    if match is None:
        return "expected HOST or HOST:PORT"
    # The reference grammar stops at brackets of hex and colons, and at digits for a port.
    if match["ipv6"] is not None:
        import ipaddress  # here, not for every command: only a bracketed address needs it

        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            return "not an IPv6 address in the brackets"
    port = match["port"]
    if port is not None and (len(port) > 5 or not 0 < int(port) <= _PORT_MAX):
        return "port out of range"
    return None


def _digest_problem(digest: str) -> str | None:
    """Why `digest` is no digest docker accepts, or None when it is one."""
    match = _match("digest", digest)
    if match is None:
        return "expected ALGORITHM:HEX"
    algorithm, hexdigits = match["algorithm"], match["hex"]
    size = _DIGEST_HEX_LENGTH.get(algorithm)
    if size is None:
        return f"unsupported algorithm {algorithm!r}"
    if len(hexdigits) != size or hexdigits != hexdigits.lower():
        return f"{algorithm} takes {size} lowercase hex digits"
    return None


def parse_reference(text: str) -> Reference:
    """Parse an image reference like the docker CLI does.

    Args:
        text: e.g. ``busybox``, ``busybox:1.36``, ``localhost:5000/team/app@sha256:…``.

    Returns:
        The parsed Reference (no defaults filled in: a bare name has tag None).

    Raises:
        InvalidInput: the text is not a valid reference; the message says which part is wrong.
    """
    if not text or text != text.strip():
        raise InvalidInput(f"invalid reference {text!r}: empty or surrounded by spaces")
    if _match("identifier", text):
        raise InvalidInput(f"invalid reference {text!r}: 64 hex digits name an image ID")
    rest, at, digest = text.partition("@")
    if at and (problem := _digest_problem(digest)):
        raise InvalidInput(f"invalid reference {text!r}: bad digest {digest!r} ({problem})")
    tag: str | None = None
    # A ":" after the last "/" is a tag; one before it belongs to a registry port.
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _match("tag", tag):
            raise InvalidInput(f"invalid reference {text!r}: bad tag {tag!r}")
    domain, path = _split_domain(rest)
    if domain is not None and not _match("domain", domain):
        raise InvalidInput(f"invalid reference {text!r}: bad registry address {domain!r}")
    if not _match("path", path):
        if path.lower() != path and _match("path", path.lower()):
            raise InvalidInput(f"invalid reference {text!r}: repository name must be lowercase")
        raise InvalidInput(f"invalid reference {text!r}: bad repository name {path!r}")
    # The whole name as written, domain included, as engines before distribution/reference
    # v0.6 count it (v0.6 counts the path alone, so this is the stricter of the two).
    if len(rest) > _NAME_MAX:
        raise InvalidInput(f"invalid reference {text!r}: repository name longer than {_NAME_MAX}")
    return Reference(domain=domain, path=path, tag=tag, digest=digest or None)


def is_image_id(text: str) -> bool:
    """An image ID (short hex, or sha256:…), as opposed to a reference."""
    return _match("id", text) is not None


def validate_image(text: str) -> str:
    """Accept an image reference or an image ID (short hex, or sha256:…); return it unchanged.

    Raises:
        InvalidInput: neither a reference nor an ID.
    """
    if is_image_id(text):
        return text
    parse_reference(text)
    return text


def validate_container(text: str) -> str:
    """Accept a container name or ID as the engine does.

    Raises:
        InvalidInput: not a valid container name or ID.
    """
    if not _match("container", text) or len(text) > 255:
        raise InvalidInput(f"invalid container name or ID {text!r}")
    return text


def validate_registry(text: str) -> str:
    """Accept a registry address ``host[:port]``; return it unchanged.

    Raises:
        InvalidInput: not a host or host:port (a scheme or a path is refused).
    """
    if problem := _address_problem(text):
        raise InvalidInput(f"invalid registry address {text!r}: {problem}")
    return text


def familiar_name(name: str) -> str:
    """A name as an engine stores it (a RepoTags or RepoDigests entry) in the familiar form
    docker prints: docker.io/library/busybox:latest is busybox:latest, docker.io/org/x is org/x.
    Podman stores full names, docker familiar ones; localhost/ and other registries stay. A
    name that does not parse (`<none>:<none>`) is returned as it is."""
    try:
        return str(parse_reference(name).familiar())
    except InvalidInput:
        return name


def qualified_id(image_id: str) -> str:
    """An image ID with its algorithm: podman writes some IDs as bare hex (its rmi answer,
    history, commit, ParentId) where docker writes sha256:…; other text is returned as it is."""
    return f"sha256:{image_id}" if _match("identifier", image_id) else image_id
