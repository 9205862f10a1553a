"""Docker reference grammar (distribution/reference), checked before any engine call.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component { "/" path-component }
    domain     := host [ ":" port ]
    path-comp  := [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex{32,}

The first component is a domain only when it holds "." or ":" or is "localhost", as the
docker CLI decides; "myhost/app" is the repository myhost/app on Docker Hub.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from dockops.errors import InvalidInput

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_GRAMMAR = {
    "domain": rf"{_HOST}(?::[0-9]{{1,5}})?",
    "path": rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*",
    "tag": r"(?a)[\w][\w.-]{0,127}",
    "digest": r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}",
    "id": r"(?:sha256:)?[0-9a-f]{12,64}",
    "container": r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]*",
}


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    # Compiled on first use: every command imports this module, few need every pattern.
    return re.compile(_GRAMMAR[name])


def _matches(name: str, text: str) -> bool:
    return _pattern(name).fullmatch(text) is not None


_NAME_TOTAL_MAX = 255


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


def _split_domain(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return None, name


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
    rest, at, digest = text.partition("@")
    if at and not _matches("digest", digest):
        raise InvalidInput(f"invalid reference {text!r}: bad digest {digest!r}")
    tag: str | None = None
    # A ":" after the last "/" is a tag; one before it belongs to a registry port.
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _matches("tag", tag):
            raise InvalidInput(f"invalid reference {text!r}: bad tag {tag!r}")
    if len(rest) > _NAME_TOTAL_MAX:
        raise InvalidInput(f"invalid reference {text!r}: name longer than {_NAME_TOTAL_MAX}")
    domain, path = _split_domain(rest)
    if domain is not None and not _matches("domain", domain):
        raise InvalidInput(f"invalid reference {text!r}: bad registry address {domain!r}")
    if not _matches("path", path):
        if path.lower() != path and _matches("path", path.lower()):
            raise InvalidInput(f"invalid reference {text!r}: repository name must be lowercase")
        raise InvalidInput(f"invalid reference {text!r}: bad repository name {path!r}")
    return Reference(domain=domain, path=path, tag=tag, digest=digest or None)


def is_image_id(text: str) -> bool:
    """An image ID (short hex, or sha256:…), as opposed to a reference."""
    return _matches("id", text)


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
    if not _matches("container", text) or len(text) > 255:
        raise InvalidInput(f"invalid container name or ID {text!r}")
    return text


def validate_registry(text: str) -> str:
    """Accept a registry address ``host[:port]``; return it unchanged.

    Raises:
        InvalidInput: not a host or host:port (a scheme or a path is refused).
    """
    if not _matches("domain", text):
        raise InvalidInput(f"invalid registry address {text!r}: expected HOST or HOST:PORT")
    _, _, port = text.rpartition(":") if not text.endswith("]") else ("", "", "")
    if port.isdigit() and not 0 < int(port) < 65536:
        raise InvalidInput(f"invalid registry address {text!r}: port out of range")
    return text
