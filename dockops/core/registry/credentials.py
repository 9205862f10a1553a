"""Registry credentials kept exactly where the docker CLI keeps them.

`dockops login` and `docker login` must be interchangeable both ways: a login made by either is
used by both, a logout by either removes it. So this follows docker/cli's configfile and
credentials packages: config.json "auths" (base64 of user:password), or the
docker-credential-NAME helper that "credHelpers" or "credsStore" names.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockops.atomic import atomic_writer
from dockops.errors import InvalidInput

HELPER_TIMEOUT = 10.0
# docker's convention for an identity (OAuth refresh) token in a username/secret pair.
TOKEN_USERNAME = "<token>"
NOT_FOUND = "credentials not found in native keychain"
# `docker login` with no server stores Docker Hub under this legacy URL, in files and helpers.
HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class Credentials:
    """One login; `source` says where it was found, for `dockops login` to report."""

    username: str
    password: str = field(repr=False)
    source: str


def docker_config_dir() -> Path:
    """$DOCKER_CONFIG, else ~/.docker: the folder the docker CLI reads."""
    env = os.environ.get("DOCKER_CONFIG")
    return Path(env) if env else Path.home() / ".docker"


def docker_config_path() -> Path:
    """The config.json docker reads logins and credential-helper settings from."""
    return docker_config_dir() / "config.json"


def _hostname(address: str) -> str:
    """docker's ConvertToHostname, so every spelling old CLIs wrote for one registry matches."""
    for scheme in ("http://", "https://"):
        address = address.removeprefix(scheme)
    host = address.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_HOSTS else host


def _server_key(registry: str) -> str:
    return HUB_KEY if _hostname(registry) == "docker.io" else registry


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def _parse(path: Path, raw: bytes | None) -> dict[str, Any]:
    try:
        text = (raw or b"").decode("utf-8")
        config = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(config, dict):
        raise InvalidInput(f"{path} is not a JSON object; fix or remove it")
    for key, kind in (("auths", dict), ("credHelpers", dict), ("credsStore", str)):
        if not isinstance(config.get(key, kind()), kind):
            raise InvalidInput(f'{path}: "{key}" has the wrong type; fix or remove it')
    return config


def _load(path: Path) -> dict[str, Any]:
    return _parse(path, _read(path))


def _helper_for(config: dict[str, Any], registry: str) -> str | None:
    host = _hostname(registry)
    for key, name in config.get("credHelpers", {}).items():
        if _hostname(key) == host and isinstance(name, str) and name:
            return name
    return config.get("credsStore") or None


def _call(name: str, action: str, payload: str, registry: str, secret: str = "") -> str | None:
    """Run docker-credential-NAME ACTION; its stdout, or None when it holds nothing for that."""
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        raise InvalidInput(
            f"credentials for {registry} are kept by docker-credential-{name} "
            f"(set in {docker_config_path()}), which is not installed: "
            "install it or remove that setting"
        )
    failed = f"docker-credential-{name} {action} failed"
    try:
        proc = subprocess.run(
            [program, action],
            input=payload,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"{failed}: no answer in {HELPER_TIMEOUT:g} s") from None
    except OSError as exc:
        raise InvalidInput(f"{failed}: {exc.strerror}") from None
    output = f"{proc.stdout}\n{proc.stderr}"
    if proc.returncode == 0:
        return proc.stdout
    if NOT_FOUND in output:
        return None
    lines = (line.strip() for line in output.splitlines())
    first = next((line for line in lines if line), f"exit status {proc.returncode}")
    # a careless helper may echo its stdin back: the secret must not reach a terminal or a log
    raise InvalidInput(f"{failed}: {first.replace(secret, '***') if secret else first}")


def _helper_get(name: str, registry: str) -> Credentials | None:
    output = _call(name, "get", _server_key(registry), registry)
    if output is None:
        return None
    try:
        answer = json.loads(output)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        # its output holds the secret, so it is never quoted
        bad = f"docker-credential-{name} get failed: its answer is not credentials"
        raise InvalidInput(bad) from None
    if not username and not secret:
        return None
    return Credentials(
        username=username, password=secret, source=f"helper docker-credential-{name}"
    )


def _entry_credentials(entry: Any, path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise InvalidInput(f'{path}: the "auths" entry {key!r} is not a JSON object')
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return Credentials(username=TOKEN_USERNAME, password=token, source="config.json")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            username, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise InvalidInput(f"{path}: the auth of {key!r} is not base64 of user:password")
        # docker trims NULs from the password when it decodes (configfile.decodeAuth)
        return Credentials(username=username, password=password.strip("\x00"), source="config.json")
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(secret, str) and user:
        return Credentials(username=user, password=secret, source="config.json")
    return None


def _matching_keys(auths: dict[str, Any], registry: str) -> list[str]:
    host, exact = _hostname(registry), _server_key(registry)
    # the exact key first, as docker looks it up before trying the other spellings
    return sorted((key for key in auths if _hostname(key) == host), key=lambda key: key != exact)


def _give_to_folder_owner(fd: int, folder: Path) -> None:
    """Under sudo, a file root creates in a user's DOCKER_CONFIG goes to that user, who could
    otherwise no longer log in (nor read it) with their own docker or dockops."""
    if os.geteuid() == 0:
        owner = folder.stat()
        os.fchown(fd, owner.st_uid, owner.st_gid)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of config.json, so two logins at once both survive."""
    lock = path.with_name(path.name + ".lock")
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC  # a symlink there may point anywhere
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(lock, flags | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
        except FileExistsError:
            fd, created = os.open(lock, flags), False
    except OSError as exc:
        raise InvalidInput(f"cannot open {lock}: {exc.strerror}") from None
    try:
        if created:
            _give_to_folder_owner(fd, path.parent)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# docker takes no lock on config.json: a `docker login` renames its own whole copy in, maybe
# while ours is being written. So, just before our rename, the file is read again; if it moved
# since we read it, the change is made again on what it holds now. What is left is the moment
# between that check and the rename, and docker's own window (it reads the file before it asks
# the registry and writes it after), which only docker could close.
_MERGE_TRIES = 5


class _Moved(Exception):
    """config.json changed while ours was being written."""


def _rewrite(path: Path, registry: str, entry: dict[str, str] | None, recheck: bool) -> bool:
    target = path.resolve()  # through a symlink to its target: dotfile managers link config.json
    raw = _read(target)
    config = _parse(path, raw)
    auths = config.setdefault("auths", {})
    stale = _matching_keys(auths, registry)
    if entry is None and not stale:
        return False
    removed = any(auths[key] != {} for key in stale)
    for key in stale:
        del auths[key]
    if entry is not None:
        auths[_server_key(registry)] = entry
    data = json.dumps(config, indent="\t", ensure_ascii=False).encode("utf-8")
    try:
        old = target.stat() if raw is not None else None
        # docker keeps the owner and mode of the file it replaces; so does this, less any
        # access for group and others (a login is the owner's alone)
        mode = stat.S_IMODE(old.st_mode) & 0o600 if old else 0o600
        with atomic_writer(target, mode) as handle:
            handle.write(data)
            if old is None:
                _give_to_folder_owner(handle.fileno(), target.parent)
            elif os.geteuid() == 0:
                os.fchown(handle.fileno(), old.st_uid, old.st_gid)
            if recheck:
                handle.flush()
                os.fsync(handle.fileno())  # the slow part: the check comes after it
                if _read(target) != raw:
                    raise _Moved
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    return removed


def _update_auths(registry: str, entry: dict[str, str] | None) -> bool:
    """Drop every spelling of `registry` from "auths", then add `entry`; True if creds went."""
    path = docker_config_path()
    with _locked(path):
        tries = _MERGE_TRIES
        while True:
            tries -= 1
            try:
                return _rewrite(path, registry, entry, recheck=tries > 0)
            except _Moved:
                continue


def get_credentials(registry: str) -> Credentials | None:
    """The credentials docker would use for `registry` ("HOST[:PORT]"), or None.

    Raises:
        InvalidInput: config.json is malformed, or its credential helper is missing or fails.
    """
    path = docker_config_path()
    config = _load(path)
    helper = _helper_for(config, registry)
    if helper:
        return _helper_get(helper, registry)
    auths: dict[str, Any] = config.get("auths", {})
    for key in _matching_keys(auths, registry):
        found = _entry_credentials(auths[key], path, key)
        if found is not None:
            return found
    return None


def store_credentials(registry: str, username: str, password: str) -> str:
    """Save a login where `docker login` would, replacing any older spelling of the registry.

    Returns:
        Where it went: "config.json" or "helper docker-credential-NAME".
    Raises:
        InvalidInput: config.json is malformed, or its credential helper is missing or fails.
    """
    helper = _helper_for(_load(docker_config_path()), registry)
    if helper:
        payload = {"ServerURL": _server_key(registry), "Username": username, "Secret": password}
        _call(helper, "store", json.dumps(payload), registry, secret=password)
        # as docker does: an empty entry lists the login, and any plain-text copy goes
        _update_auths(registry, {})
        return f"helper docker-credential-{helper}"
    if username == TOKEN_USERNAME:
        entry = {"identitytoken": password}
    elif ":" in username:
        raise InvalidInput("a registry username cannot contain ':'")
    else:
        entry = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode("ascii")}
    _update_auths(registry, entry)
    return "config.json"


def erase_credentials(registry: str) -> bool:
    """Forget the login for `registry`, in its helper and in config.json, as `docker logout` does.

    Returns:
        True when credentials were removed.
    Raises:
        InvalidInput: config.json is malformed, or its credential helper is missing or fails.
    """
    config = _load(docker_config_path())
    helper = _helper_for(config, registry)
    from_helper = False
    if helper and _helper_get(helper, registry) is not None:
        _call(helper, "erase", _server_key(registry), registry)
        from_helper = True
    # no write (not even the lock file) when the file holds nothing for it
    in_file = bool(_matching_keys(config.get("auths", {}), registry))
    from_file = in_file and _update_auths(registry, None)
    return from_helper or from_file


def auth_config(registry: str) -> dict[str, str] | None:
    """docker-py's auth_config for `registry`: username, password, serveraddress; or None.

    Raises:
        InvalidInput: as get_credentials.
    """
    creds = get_credentials(registry)
    if creds is None:
        return None
    address = _server_key(registry)
    config = {"username": creds.username, "password": creds.password, "serveraddress": address}
    if creds.username == TOKEN_USERNAME:
        # the engine uses an identity token (OAuth refresh) only when it arrives in this field
        config["identitytoken"] = creds.password
    return config
