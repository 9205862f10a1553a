"""The htpasswd file of the registry's nginx frontend: bcrypt entries, one user per line.

bcrypt is the one htpasswd scheme that both nginx (through libc crypt(): libxcrypt on Debian,
musl on Alpine) and registry:2's own htpasswd backend accept, so the same file serves either
way of doing auth. Entries are written as $2y$, the prefix Apache's htpasswd uses.
"""

from __future__ import annotations

from pathlib import Path

from dockops.atomic import write_atomic
from dockops.errors import InvalidInput

# bcrypt reads at most 72 bytes; past that, two different passwords would both match
MAX_PASSWORD_BYTES = 72


def hash_password(password: str, *, rounds: int = 10) -> str:
    """Hash `password` with bcrypt, in the "$2y$" form htpasswd files use.

    Args:
        password: 1 to 72 bytes once UTF-8 encoded, no NUL.
        rounds: the bcrypt cost, 4 to 31.
    Returns:
        "$2y$<rounds>$<salt+hash>".
    Raises:
        InvalidInput: bad password or cost.
    """
    import bcrypt

    secret = _secret(password)
    if not 4 <= rounds <= 31:
        raise InvalidInput(f"bcrypt cost {rounds}: must be 4 to 31")
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=rounds)).decode("ascii")
    # same algorithm: $2b$ and $2y$ only name the fixes made to two old, buggy implementations
    return "$2y$" + hashed.removeprefix("$2b$")


def htpasswd_line(user: str, password: str) -> str:
    """Return the "user:$2y$..." line for `user` (no newline).

    Raises:
        InvalidInput: bad user name or password.
    """
    _check_user(user)
    return f"{user}:{hash_password(password)}"


def write_htpasswd(path: Path, user: str, password: str) -> bool:
    """Set `user`'s password in `path`, keeping every other line as it is.

    Returns:
        True when the file changed; False when `user` already has exactly this password, so a
        re-run leaves the file (and the containers that mount it) alone.
    Raises:
        InvalidInput: bad user name or password, or the file cannot be read or written.
    """
    _check_user(user)
    _secret(password)
    lines = _read_lines(path)
    mine = [index for index, line in enumerate(lines) if _split(line)[0] == user]
    if len(mine) == 1 and _matches(_split(lines[mine[0]])[1], password):
        return False
    # duplicates go too: nginx uses the first line of a user, registry:2 the last
    kept = [line for index, line in enumerate(lines) if index not in mine]
    kept.insert(mine[0] if mine else len(kept), htpasswd_line(user, password))
    try:
        # 0644: nginx reads the file from its unprivileged worker processes at each request,
        # and the file holds only salted bcrypt hashes
        write_atomic(path, "".join(line + "\n" for line in kept).encode("utf-8"), 0o644)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    return True


def users(path: Path) -> tuple[str, ...]:
    """The users in `path`, in file order, each once; () when the file does not exist.

    Raises:
        InvalidInput: the file cannot be read.
    """
    found = (_split(line)[0] for line in _read_lines(path))
    return tuple(dict.fromkeys(name for name in found if name))


def _check_user(user: str) -> None:
    # ':' ends the name in the file; nginx skips lines starting with '#' as comments
    bad = ":" in user or user.startswith("#")
    if not user or bad or any(char.isspace() or not char.isprintable() for char in user):
        raise InvalidInput(
            f"user {user!r}: must be non-empty, not start with '#', and have no ':', "
            "spaces or control characters"
        )


def _secret(password: str) -> bytes:
    if not password:
        raise InvalidInput("the password is empty")
    try:
        secret = password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("the password is not valid text") from None
    if len(secret) > MAX_PASSWORD_BYTES:
        raise InvalidInput(
            f"the password is {len(secret)} bytes; bcrypt uses only the first "
            f"{MAX_PASSWORD_BYTES}, so longer ones are refused"
        )
    if b"\0" in secret:
        raise InvalidInput("the password contains a NUL character")
    return secret


def _matches(hashed: str, password: str) -> bool:
    import bcrypt

    # the bcrypt library only knows the $2a$/$2b$ names of the same algorithm
    if hashed.startswith("$2y$"):
        hashed = "$2b$" + hashed[4:]
    try:
        return bcrypt.checkpw(_secret(password), hashed.encode("ascii"))
    except ValueError:
        return False  # not bcrypt: an MD5/SHA1 entry made by another tool


def _split(line: str) -> tuple[str, str]:
    """(user, hash) of an entry line; ("", "") for blank and comment lines."""
    if not line.strip() or line.startswith("#"):
        return "", ""
    user, _, rest = line.rstrip("\r").partition(":")
    # nginx allows a third field, a comment, after the hash
    return user, rest.partition(":")[0]


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"cannot read {path}: not UTF-8 text") from None
    # not splitlines(): it also splits on form feeds and the like, which would alter the lines
    # of other users on the next rewrite
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines
