"""Check a tar stream as it passes through, without holding more than one header block.

Both directions need it. On save/export the engine answers 200 before it starts writing, so a
failure part-way arrives as a JSON error document appended to the tar (moby writes
`streamformatter.FormatError` into the body) or as a stream that simply stops: only walking
the headers tells a complete tar from a broken one. On load/import, a truncated or corrupt
file is refused here, before the bad bytes reach the engine, so it loads nothing and the user
gets one clear line instead of a broken pipe.
"""

from __future__ import annotations

import json

BLOCK = 512
_CHECKSUM = slice(148, 156)
_SIZE = slice(124, 136)
_NAME = slice(0, 100)


class TarProblem(Exception):
    """The stream is not a valid tar; `message` says where and why, `engine_error` holds the
    engine's own text when the bytes were a JSON error document instead of a header."""

    def __init__(self, message: str, engine_error: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.engine_error = engine_error


def looks_like_tar(head: bytes) -> bool:
    """True when `head` (the first block or more) is a tar header with a valid checksum."""
    return len(head) >= BLOCK and _header_ok(head[:BLOCK])


def _header_ok(block: bytes) -> bool:
    stored = block[_CHECKSUM].split(b"\0", 1)[0].strip()
    try:
        expected = int(stored, 8)
    except ValueError:
        return False
    # The checksum is computed with its own 8 bytes taken as spaces (POSIX ustar); some old
    # writers summed signed bytes, which only differs for bytes >= 0x80.
    unsigned = sum(block) - sum(block[_CHECKSUM]) + 8 * 0x20
    signed = unsigned - 256 * sum(1 for b in block if b >= 0x80)
    signed += 256 * sum(1 for b in block[_CHECKSUM] if b >= 0x80)
    return expected in (unsigned, signed)


def _member_size(block: bytes) -> int:
    field = block[_SIZE]
    if field[0] & 0x80:
        # GNU base-256 for members of 8 GiB and more.
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _engine_error(data: bytes) -> str | None:
    """The message of a JSON error document at the start of `data`, if that is what it is."""
    text = data.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    if not text.startswith("{"):
        return None
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            detail = doc.get("errorDetail") or {}
            message = detail.get("message") if isinstance(detail, dict) else None
            message = message or doc.get("error") or doc.get("message")
            if message:
                return " ".join(str(message).split())
    return None


class TarWalker:
    """Follows member headers through a byte stream fed in arbitrary chunks.

    Member data is skipped by counting; only 512-byte header blocks are looked at, so the cost
    per byte is nil for big layers and memory stays one block.
    """

    def __init__(self) -> None:
        self.offset = 0  # bytes fed so far
        self._skip = 0  # data (with padding) of the current member still to pass
        self._pending = b""  # a header block split across chunks
        self._zero_blocks = 0
        self._member = ""
        self.members = 0

    @property
    def ended(self) -> bool:
        """True once the end-of-archive marker (two zero blocks) has passed."""
        return self._zero_blocks >= 2

    def feed(self, chunk: bytes | memoryview) -> None:
        """Check the next bytes of the stream.

        Raises:
            TarProblem: a header is not a valid tar header (the message gives the offset).
        """
        view = memoryview(chunk)
        position = 0
        size = len(view)
        while position < size and not self.ended:
            if self._skip:
                step = min(self._skip, size - position)
                self._skip -= step
                position += step
                continue
            need = BLOCK - len(self._pending)
            piece = bytes(view[position : position + need])
            position += len(piece)
            self._pending += piece
            if len(self._pending) < BLOCK:
                break
            block, self._pending = self._pending, b""
            self._header(block, self.offset + position - BLOCK)
        self.offset += size

    def _header(self, block: bytes, at: int) -> None:
        if not any(block):
            self._zero_blocks += 1
            return
        if self._zero_blocks:
            # One zero block then a header: tolerated as GNU tar does (`--ignore-zeros` style).
            self._zero_blocks = 0
        if not _header_ok(block):
            error = _engine_error(block)
            where = f"after '{self._member}'" if self._member else "at the start"
            raise TarProblem(
                f"corrupt tar: bad header at byte {at} ({where})",
                engine_error=error,
            )
        self._member = block[_NAME].split(b"\0", 1)[0].decode("utf-8", "replace")
        self.members += 1
        size = _member_size(block)
        self._skip = -(-size // BLOCK) * BLOCK

    def finish(self) -> None:
        """Declare the end of the stream.

        Raises:
            TarProblem: the stream stopped before the end-of-archive marker (truncated).
        """
        if self.ended:
            return
        error = _engine_error(self._pending) if self._pending else None
        if error:
            # An error document is usually shorter than a block: it never became a header.
            raise TarProblem(f"the stream ends with an error at byte {self.offset}", error)
        if self._skip or self._pending:
            raise TarProblem(
                f"truncated tar: it ends at byte {self.offset} inside '{self._member}'"
            )
        if self.members == 0:
            raise TarProblem("not a tar archive: no member in it")
        raise TarProblem(f"truncated tar: it ends at byte {self.offset} without its end marker")
