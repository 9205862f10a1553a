"""Check a tar stream as it passes through, without holding more than one header block.

Both directions need it. On save/export the engine answers 200 before it starts writing, so a
failure part-way arrives as a JSON error document appended to the tar (moby writes
`streamformatter.FormatError` into the body) or as a stream that simply stops: only walking
the headers tells a complete tar from a broken one. On load/import, a truncated or corrupt
file is refused here, before the bad bytes reach the engine, so it loads nothing and the user
gets one clear line instead of a broken pipe.

Headers are read as the engine's own reader (Go's archive/tar) reads them, and no more
loosely: number fields strictly (octal, or GNU base-256), PAX `size` and `path` records
of the last 'x' header applied to the member they precede, a global 'g' header a member of
its own that drops what came before it, no data after a link, device, folder or FIFO header, GNU
sparse extension blocks. So the walker's members are the engine's, and no header can make it
go back, stand still or hold more than SPECIAL_LIMIT bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from dockops.engine.errors import daemon_error
from dockops.text import printable

BLOCK = 512
# What Go's archive/tar takes at most for a PAX header or a GNU long name (maxSpecialFileSize):
# the engine refuses more, and the walker holds no more. Also the cap on a GNU sparse map.
SPECIAL_LIMIT = 1024 * 1024
NAME_SHOWN = 200  # characters of a member name a message quotes
_NAME = slice(0, 100)
_SIZE = slice(124, 136)
_CHECKSUM = slice(148, 156)
_TYPE = slice(156, 157)
_MAGIC = slice(257, 265)
_PREFIX = slice(345, 500)
_USTAR = b"ustar\x0000"  # POSIX ustar/PAX; GNU's "ustar  \0" keeps other fields there
_SPARSE_EXTENDED = 482  # old GNU sparse header: more of the map in the blocks after it ...
_EXTENSION_EXTENDED = 504  # ... each of which says whether another follows
_PAX = (b"x", b"g")
_GNU_LONG = (b"L", b"K")
_EXTENDED = _PAX + _GNU_LONG
# Links, devices, folders, FIFOs: no data follows whatever the size field says (Go and
# Python's tarfile agree).
_HEADER_ONLY = (b"1", b"2", b"3", b"4", b"5", b"6")
_REGULAR = (b"0", b"\0", b"7")
_OCTAL = re.compile(rb"[0-7]+")
_DECIMAL = re.compile(rb"[0-9]{1,19}")
_RECORD_LENGTH = re.compile(rb"([1-9][0-9]{0,19}) ")


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


def _octal(field: bytes) -> int | None:
    """An octal number field as Go's archive/tar reads it (parseOctal): spaces and NULs
    stripped from both ends (all padding is 0), then cut at the first NUL left (parseString:
    b"12\\0 34" is 12), then digits only; None for anything else (a sign, an 8, a space
    between digits, which Python's int() or tarfile would let through)."""
    stripped = field.strip(b" \0")
    if not stripped:
        return 0
    digits = stripped.split(b"\0", 1)[0]
    return int(digits, 8) if _OCTAL.fullmatch(digits) else None


def _header_ok(block: bytes) -> bool:
    expected = _octal(block[_CHECKSUM])
    if expected is None:
        return False
    # The checksum is computed with its own 8 bytes taken as spaces (POSIX ustar); some old
    # writers summed signed bytes, which only differs for bytes >= 0x80.
    unsigned = sum(block) - sum(block[_CHECKSUM]) + 8 * 0x20
    signed = unsigned - 256 * sum(1 for b in block if b >= 0x80)
    signed += 256 * sum(1 for b in block[_CHECKSUM] if b >= 0x80)
    return expected in (unsigned, signed)


def _member_size(block: bytes) -> int | None:
    """The size field; None when it is not a size (negative, not octal)."""
    field = block[_SIZE]
    if field[0] == 0x80:
        # GNU base-256 (big-endian after the marker byte): members of 8 GiB and more. Go
        # takes a signed 64-bit number: 2**63 and more overflows, and it refuses the header.
        size = int.from_bytes(field[1:], "big")
        return size if size < 1 << 63 else None
    if field[0] & 0x80:
        return None  # 0xff: a negative base-256 number; other marker bytes no writer makes
    return _octal(field)


def _pax_records(data: bytes) -> dict[bytes, bytes] | None:
    """The records of a PAX header ("%d %s=%s\\n", the length counting the whole record);
    None when any is malformed, as Go refuses it."""
    records: dict[bytes, bytes] = {}
    position = 0
    while position < len(data):
        length = _RECORD_LENGTH.match(data, position)
        if length is None:
            return None
        end = position + int(length[1])
        if end > len(data) or end <= length.end() or data[end - 1] != 0x0A:
            return None
        key, equals, value = data[length.end() : end - 1].partition(b"=")
        if not equals or not key:
            return None
        records[key] = value
        position = end
    return records


def _engine_error(data: bytes) -> str | None:
    """The message of a JSON error document at the start of `data`, if that is what it is."""
    text = data.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    if not text.startswith("{"):
        return None
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            message = daemon_error(doc) or doc.get("message")
            if message:
                return str(message)
    return None


class TarWalker:
    """Follows member headers through a byte stream fed in arbitrary chunks.

    Member data is skipped by counting; only 512-byte header blocks are looked at, so the cost
    per byte is nil for big layers and memory stays one block, plus what extended headers
    (PAX, GNU long names: SPECIAL_LIMIT each at most) say of the member after them.

    `keep(name, size)`, when given, is asked about each regular member: the data of those it
    accepts is gathered and appended, whole, to `kept` as (name, data); the caller empties
    that list and bounds what it accepts.
    """

    def __init__(self, keep: Callable[[str, int], bool] | None = None) -> None:
        self.offset = 0  # bytes fed so far
        self.members = 0
        self.end_at: int | None = None  # where the end-of-archive marker began, once seen
        self.kept: list[tuple[str, bytes]] = []
        self._keep = keep
        self._skip = 0  # data (with padding) of the current member still to pass
        self._take = 0  # data of the current member still to gather into _taken
        self._taken = bytearray()
        self._taking = b""  # the type of what is gathered: PAX, GNU long name, kept member
        self._taking_at = 0
        self._taking_name = ""
        self._pending = b""  # a header block split across chunks
        self._zero_blocks = 0
        self._extensions = 0  # GNU sparse extension blocks seen; 0: not in a sparse map
        self._after_extensions = 0  # the sparse member's data, to skip once its map ends
        self._next: dict[bytes, bytes] = {}  # what extended headers said of the next member
        self._member = ""

    @property
    def ended(self) -> bool:
        """True once the end-of-archive marker (two zero blocks) has passed."""
        return self._zero_blocks >= 2

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Check the next bytes of the stream.

        Raises:
            TarProblem: a header is not a valid tar header (the message gives the offset).
        """
        view = memoryview(chunk)
        position = 0
        size = len(view)
        # Each turn consumes at least one byte, or ends the loop: no input can stall it.
        while position < size and not self.ended:
            if self._take:
                step = min(self._take, size - position)
                self._taken += view[position : position + step]
                self._take -= step
                position += step
                if not self._take:
                    self._took()
                continue
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
            at = self.offset + position - BLOCK
            if self._extensions:
                self._extension(block, at)
            else:
                self._header(block, at)
        self.offset += size

    def _corrupt(self, what: str, at: int, engine_error: str | None = None) -> TarProblem:
        where = f"after '{self._member}'" if self._member else "at the start"
        return TarProblem(f"corrupt tar: {what} at byte {at} ({where})", engine_error)

    def _header(self, block: bytes, at: int) -> None:
        if not any(block):
            self._zero_blocks += 1
            # The first of the marker's blocks: zero blocks come in a row (a header after
            # one is refused below).
            self.end_at = at - BLOCK * (self._zero_blocks - 1)
            return
        if self._zero_blocks:
            # Go refuses a header after one zero block (ErrHeader): the engine stops there.
            raise self._corrupt("a header after a zero block", at)
        if not _header_ok(block):
            raise self._corrupt("bad header", at, _engine_error(block))
        kind = block[_TYPE]
        size = _member_size(block)
        if size is None:
            raise self._corrupt("bad size field in the header", at)
        if kind in _EXTENDED:
            if size > SPECIAL_LIMIT:
                what = "PAX header" if kind in _PAX else "GNU long name"
                raise self._corrupt(f"a {what} of {size} bytes (over 1 MiB) in the header", at)
            if kind == b"g":
                # Go returns a global header as a member of its own, and what 'x' or 'L'
                # headers said before it applies to nothing.
                self._next = {}
                self.members += 1
            self._gather(kind, size, at, "")
            return
        said, self._next = self._next, {}
        if b"size" in said:
            size = int(said[b"size"])
        name = _name(block, said)
        self._member = printable(name, NAME_SHOWN)
        self.members += 1
        if kind in _HEADER_ONLY:
            size = 0
        if kind == b"S" and block[_SPARSE_EXTENDED]:
            # Old GNU sparse: the rest of the map comes in blocks between header and data.
            self._extensions = 1
            self._after_extensions = -(-size // BLOCK) * BLOCK
        elif kind in _REGULAR and self._keep is not None and self._keep(name, size):
            self._gather(b"0", size, at, name)
        else:
            self._skip = -(-size // BLOCK) * BLOCK

    def _gather(self, kind: bytes, size: int, at: int, name: str) -> None:
        self._taking, self._taking_at, self._taking_name = kind, at, name
        self._take = size
        self._skip = -size % BLOCK
        if not size:
            self._took()

    def _took(self) -> None:
        data, kind, at = bytes(self._taken), self._taking, self._taking_at
        self._taken = bytearray()
        self._taking = b""
        if kind in _GNU_LONG:
            if kind == b"L":
                self._next[b"gnu.name"] = data.split(b"\0", 1)[0]
            return
        if kind not in _PAX:
            self.kept.append((self._taking_name, data))
            return
        records = _pax_records(data)
        if records is None:
            raise self._corrupt("a malformed record in the PAX header", at)
        if b"size" in records:
            if kind == b"g":
                # Readers differ on it (Go ignores it, Python's tarfile and GNU tar apply it
                # to every member after): no answer could say where the next header is.
                raise self._corrupt("a size record in the global PAX header", at)
            value = records[b"size"]
            # Go's ParseInt: a 64-bit signed number (and int() refuses over 4300 digits).
            if not _DECIMAL.fullmatch(value) or int(value) >= 1 << 63:
                raise self._corrupt("a bad size record in the PAX header", at)
        if kind == b"x":
            # Go keeps the records of the last 'x' header only (a GNU long name stays), and
            # an empty value leaves the ustar field as it is. Only what the walker uses.
            kept = {k: v for k, v in records.items() if k in (b"size", b"path") and v}
            if b"gnu.name" in self._next:
                kept[b"gnu.name"] = self._next[b"gnu.name"]
            self._next = kept

    def _extension(self, block: bytes, at: int) -> None:
        if not block[_EXTENSION_EXTENDED]:
            self._extensions = 0
            self._skip = self._after_extensions
            return
        self._extensions += 1
        if self._extensions * BLOCK > SPECIAL_LIMIT:
            raise self._corrupt("a GNU sparse map over 1 MiB in the header", at)

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
        if self._skip or self._take or self._pending or self._extensions:
            inside = "an extended header" if self._taking in _EXTENDED else f"'{self._member}'"
            raise TarProblem(f"truncated tar: it ends at byte {self.offset} inside {inside}")
        if self.members == 0:
            raise TarProblem("not a tar archive: no member in it")
        raise TarProblem(f"truncated tar: it ends at byte {self.offset} without its end marker")


def _name(block: bytes, said: dict[bytes, bytes]) -> str:
    """A member's full name: a GNU long name, else a PAX path, else ustar prefix/name (the
    order Go's archive/tar applies them in)."""
    raw = said.get(b"gnu.name") or said.get(b"path")
    if not raw:
        raw = block[_NAME].split(b"\0", 1)[0]
        prefix = block[_PREFIX].split(b"\0", 1)[0] if block[_MAGIC] == _USTAR else b""
        if prefix:
            raw = prefix + b"/" + raw
    return raw.decode("utf-8", "surrogateescape")
