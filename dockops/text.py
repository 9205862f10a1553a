"""Text from outside (a registry, an engine, an archive) made fit for a terminal line."""

from __future__ import annotations

import re

# ESC or an 8-bit C1 introducer and the rest of its sequence (CSI …final, OSC/DCS/… up to BEL
# or ST, or one more character), then any other C0, DEL or C1 control left alone.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int | None = None) -> str:
    """`text` on one line without terminal control: escape sequences dropped, tabs and line
    breaks as spaces, every other control character dropped; cut to `limit` characters."""
    text = _CONTROL.sub(_blank, _ESCAPE.sub("", text))
    return text if limit is None or len(text) <= limit else text[:limit] + "..."


def _blank(match: re.Match[str]) -> str:
    return " " if match.group() in "\t\n\r\x0b\x0c" else ""
