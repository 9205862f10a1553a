"""Offline base images: busybox, registry:2 and nginx, built from this machine's Debian files.

No image can be pulled here, so each is a scratch image imported from a rootfs tar. Every
image carries a label with the hash of all its inputs; an image whose tag already carries the
same hash is reused, which makes a cached run cost only the hashing.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .engine import HarnessUnavailable
from .files import (
    NGINX_CONF,
    NGINX_DEFAULT_CONF,
    NGINX_ERROR_HTML,
    NGINX_INDEX_HTML,
    NSSWITCH_CONF,
    REGISTRY_CONFIG,
    User,
    group_file,
    passwd_file,
)
from .host import find_binary, flock
from .rootfs import Rootfs

if TYPE_CHECKING:
    from docker import APIClient

HASH_LABEL = "dockops.harness.hash"
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BASE_USERS = (
    User("root", 0, home="/root", shell="/bin/sh"),
    User("www-data", 33, home="/var/www"),
    User("nobody", 65534, group="nogroup"),
)
_NGINX_EXTRA_CONFS = ("fastcgi_params", "scgi_params", "uwsgi_params")


@dataclass(frozen=True)
class _Sources:
    """The host files the images are made of, found once per run."""

    busybox: Path
    registry: Path
    nginx: Path
    mime_types: Path

    @classmethod
    def find(cls) -> _Sources:
        found = {
            "busybox": find_binary("busybox", static=True),
            "registry": find_binary("docker-registry"),
            "nginx": find_binary("nginx"),
        }
        missing = [name for name, path in found.items() if path is None]
        mime = Path("/etc/nginx/mime.types")
        if not mime.is_file():
            missing.append(str(mime))
        if missing:
            raise HarnessUnavailable(f"cannot build base images, missing: {', '.join(missing)}")
        return cls(mime_types=mime, **{k: v for k, v in found.items() if v is not None})


def _base(src: _Sources, users: tuple[User, ...] = _BASE_USERS) -> Rootfs:
    fs = Rootfs()
    fs.busybox(src.busybox)
    fs.text("/etc/passwd", passwd_file(users))
    fs.text("/etc/group", group_file(users))
    # glibc (nginx, registry) looks users and hosts up through NSS; files is built in.
    fs.text("/etc/nsswitch.conf", NSSWITCH_CONF)
    fs.dir("/tmp", 0o1777)
    fs.dir("/root", 0o700)
    fs.dir("/run")
    fs.symlink("/var/run", "/run")
    fs.dir("/var/tmp", 0o1777)
    return fs


def _busybox_fs(src: _Sources) -> Rootfs:
    return _base(src)


def _registry_fs(src: _Sources) -> Rootfs:
    fs = _base(src)
    fs.binary("/bin/registry", src.registry)
    fs.text("/etc/docker/registry/config.yml", REGISTRY_CONFIG)
    fs.dir("/var/lib/registry")
    return fs


def _nginx_fs(src: _Sources) -> Rootfs:
    fs = _base(src, (*_BASE_USERS, User("nginx", 101, home="/nonexistent")))
    fs.binary("/usr/sbin/nginx", src.nginx)
    fs.text("/etc/nginx/nginx.conf", NGINX_CONF)
    fs.copy("/etc/nginx/mime.types", src.mime_types, 0o644)
    for name in _NGINX_EXTRA_CONFS:
        if (src.mime_types.parent / name).is_file():
            fs.copy(f"/etc/nginx/{name}", src.mime_types.parent / name, 0o644)
    fs.text("/etc/nginx/conf.d/default.conf", NGINX_DEFAULT_CONF)
    fs.text("/usr/share/nginx/html/index.html", NGINX_INDEX_HTML)
    fs.text("/usr/share/nginx/html/50x.html", NGINX_ERROR_HTML)
    # Debian's build has these temp paths compiled in; nginx creates only the last level.
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        fs.dir(f"/var/lib/nginx/{temp}")
    fs.dir("/var/cache/nginx")
    fs.dir("/run/lock")
    fs.symlink("/var/lock", "/run/lock")
    # As in the official image: logs written to the usual files reach `docker logs`.
    fs.symlink("/var/log/nginx/access.log", "/dev/stdout")
    fs.symlink("/var/log/nginx/error.log", "/dev/stderr")
    return fs


@dataclass(frozen=True)
class _Image:
    refs: tuple[str, ...]  # the first is built, the others are tags of it
    make: Callable[[_Sources], Rootfs]
    # dockerd 20.10's import takes CMD ENTRYPOINT ENV EXPOSE LABEL USER VOLUME WORKDIR ONBUILD
    # HEALTHCHECK but refuses STOPSIGNAL, so the nginx image keeps the default SIGTERM.
    changes: tuple[str, ...]


def _json(words: list[str]) -> str:
    return json.dumps(words)


IMAGES = (
    _Image(("busybox:latest",), _busybox_fs, (f"ENV {_PATH}", f"CMD {_json(['sh'])}")),
    _Image(
        ("registry:2",),
        _registry_fs,
        (
            f"ENV {_PATH}",
            "VOLUME /var/lib/registry",
            "EXPOSE 5000",
            f"ENTRYPOINT {_json(['registry'])}",
            f"CMD {_json(['serve', '/etc/docker/registry/config.yml'])}",
        ),
    ),
    _Image(
        ("nginx:stable", "nginx:latest"),
        _nginx_fs,
        (f"ENV {_PATH}", "EXPOSE 80", f"CMD {_json(['nginx', '-g', 'daemon off;'])}"),
    ),
)


def ensure_base_images(host: str, log: Callable[[str], None] | None = None) -> dict[str, str]:
    """Build the base images that are missing or stale on the engine at `host`.

    Args:
        host: the engine's address, e.g. "unix:///path/docker.sock".
        log: called with one line per image, built or reused.

    Returns:
        {ref: image id} for every ref of every base image.

    Raises:
        HarnessUnavailable: a source file is missing, the lock is held too long, or the engine
            refused an import.
    """
    import docker  # costly import: only when images are really needed

    say = log or (lambda _line: None)
    sources = _Sources.find()
    # Keyed by engine, not by root: an engine named by DOCKOPS_TEST_DOCKER_HOST has no root.
    lock = Path(tempfile.gettempdir()) / f"dockops-images-{_short_hash(host)}.lock"
    client = docker.APIClient(base_url=host, version="auto", timeout=300)
    result: dict[str, str] = {}
    try:
        with flock(lock, timeout=600):
            for image in IMAGES:
                result.update(_ensure(client, image, sources, say))
    except TimeoutError as exc:
        raise HarnessUnavailable(str(exc)) from None
    finally:
        client.close()
    return result


def _ensure(
    client: APIClient, image: _Image, sources: _Sources, say: Callable[[str], None]
) -> dict[str, str]:
    fs = image.make(sources)
    digest = fs.digest(_builder_inputs(image))
    previous = {ref: _image_id(client, ref) for ref in image.refs}
    image_id = _labelled(client, image.refs[0], digest)
    if image_id is None:
        image_id = _build(client, image, fs, digest)
        say(f"built {' '.join(image.refs)} {image_id[7:19]}")
    else:
        say(f"cached {' '.join(image.refs)} {image_id[7:19]}")
    for ref in image.refs:
        if previous[ref] != image_id:
            repository, tag = ref.rsplit(":", 1)
            client.tag(image_id, repository, tag, force=True)
    _drop_replaced(client, {old for old in previous.values() if old and old != image_id})
    return dict.fromkeys(image.refs, image_id)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _builder_inputs(image: _Image) -> bytes:
    # The builder's own code is an input: changing how images are made must rebuild them.
    here = Path(__file__).parent
    code = b"".join((here / name).read_bytes() for name in ("images.py", "rootfs.py", "files.py"))
    return code + "\n".join(image.changes).encode()


def _image_id(client: APIClient, ref: str) -> str | None:
    from docker.errors import ImageNotFound

    try:
        return str(client.inspect_image(ref)["Id"])
    except ImageNotFound:
        return None


def _labelled(client: APIClient, ref: str, digest: str) -> str | None:
    """The id of `ref` if it carries `digest` in its hash label, else None."""
    from docker.errors import ImageNotFound

    try:
        info = client.inspect_image(ref)
    except ImageNotFound:
        return None
    labels = (info.get("Config") or {}).get("Labels") or {}
    return str(info["Id"]) if labels.get(HASH_LABEL) == digest else None


def _build(client: APIClient, image: _Image, fs: Rootfs, digest: str) -> str:
    changes = [*image.changes, f"LABEL {HASH_LABEL}={digest}"]
    with tempfile.TemporaryFile() as tar:
        fs.write_tar(tar)
        tar.seek(0)
        # import_image_from_data always means "the body is the tar"; import_image given a
        # path that does not exist would have the daemon fetch it as a URL instead.
        # The tag goes in `repo`: podman's import ignores the separate `tag` parameter.
        out = client.import_image_from_data(tar, repository=image.refs[0], changes=changes)
    # Like push and pull, import reports a failure inside an HTTP 200 JSON stream.
    for line in str(out).splitlines():
        message = json.loads(line) if line.lstrip().startswith("{") else {}
        if "error" in message:
            raise HarnessUnavailable(f"import of {image.refs[0]} failed: {message['error']}")
    image_id = _labelled(client, image.refs[0], digest)
    if image_id is None:
        raise HarnessUnavailable(f"import of {image.refs[0]} left no image labelled {digest}")
    return image_id


def _drop_replaced(client: APIClient, old_ids: set[str]) -> None:
    """Remove images a rebuild replaced: left dangling, prune tests would count them."""
    from docker.errors import APIError

    for old in old_ids:
        # Only a now untagged image: removing by id would also untag and delete an image that
        # still has one other tag. A container using it makes the removal fail: then keep it.
        with suppress(APIError):
            if not client.inspect_image(old).get("RepoTags"):
                client.remove_image(old)
