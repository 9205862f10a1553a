"""Does an htpasswd file let a user in? Checked with bcrypt alone, as nginx would check it,
not with the product's own htpasswd code, which is what is under test."""

from __future__ import annotations

from pathlib import Path

import bcrypt


def check_htpasswd(path: Path, user: str, password: str) -> bool:
    """True when `user`'s entry in `path` is a bcrypt hash of `password`; False when the file,
    the user or a bcrypt entry is missing."""
    if not path.exists():
        return False
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, hashed = line.partition(":")
        if name != user:
            continue
        if not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            return False
        # bcrypt (the library) knows $2y$ as $2b$: the same algorithm.
        return bcrypt.checkpw(password.encode(), ("$2b$" + hashed[4:]).encode())
    return False
