"""The second disposable engine: a private Podman API service (`podman system service`).

Like the dockerd in engine.py it has its own storage (graphroot under the engine root), its own
run state in a short /tmp folder, its own socket and a pidfile, and it is stopped only through
that pid. Its configuration is its own too (containers.conf, storage.conf, registries.conf,
given through CONTAINERS_* variables), so the host's /etc/containers is never written, and:

- runc, not crun (crun 1.8 refuses the hybrid cgroup layout of these machines); cgroupfs and a
  file events log, because there is no systemd or journald; file locks in its own tmp folder,
  not the host-wide shared-memory lock segment;
- no network: containers are created with `none` or `host`, and the CNI plugin folder is
  empty, so a bridged container fails instead of adding bridges and iptables rules;
- no pulls: no unqualified-search registries, docker.io blocked, a proxy on a dead loopback
  port, and (as for dockerd) a mount namespace whose resolv.conf names only 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from . import host
from .engine import (
    _NO_EGRESS_ENV,
    _SANE_PATH,
    Engine,
    HarnessUnavailable,
    _flock,
    _request,
    wait_until_ping,
)

ENV_PODMAN_HOST = "DOCKOPS_TEST_PODMAN_HOST"

# Popen objects of the services this process started, so stop_podman can reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class _Layout:
    root: Path
    graphroot: Path
    conf: Path  # containers.conf, storage.conf, registries.conf, resolv.conf, cni/
    runtime: Path  # short /tmp folder: runroot, tmp_dir (locks, the alive file), the socket
    socket: Path
    pidfile: Path
    log: Path
    lock: Path

    @classmethod
    def of(cls, root: Path) -> _Layout:
        root = Path(os.path.realpath(root))
        # conmon's attach socket lives under runroot/<64-hex id>/…: keep the prefix short.
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        runtime = Path(f"/tmp/dockops-pm-{digest}")
        return cls(
            root=root,
            graphroot=root / "storage",
            conf=root / "conf",
            runtime=runtime,
            socket=runtime / "podman.sock",
            pidfile=root / "podman.pid",
            log=root / "podman.log",
            lock=root / "harness.lock",
        )

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


def default_podman_root() -> Path:
    """`<repo>/.build/podman`."""
    return Path(__file__).resolve().parents[2] / ".build" / "podman"


def podman_from_env() -> Engine | None:
    """The Podman service named by DOCKOPS_TEST_PODMAN_HOST, if any; never stopped by us."""
    named = os.environ.get(ENV_PODMAN_HOST)
    if not named:
        return None
    return Engine(host=named, root=None, pidfile=None, owned=False, kind="podman")


def podman_at(root: Path) -> Engine:
    layout = _Layout.of(root)
    return _owned(layout)


def _owned(layout: _Layout) -> Engine:
    return Engine(
        host=layout.host, root=layout.root, pidfile=layout.pidfile, owned=True, kind="podman"
    )


def start_podman(root: Path, timeout: float = 60) -> Engine:
    """Start a private Podman API service on `root`, with an empty store, and wait until it
    answers /_ping.

    Raises:
        HarnessUnavailable: not root, no podman or runc, or the service did not come up.
    """
    if os.geteuid() != 0:
        raise HarnessUnavailable(f"starting podman needs root; or set {ENV_PODMAN_HOST}")
    podman = host.find_binary("podman")
    if podman is None or host.find_binary("runc") is None:
        raise HarnessUnavailable("podman or runc not found: install podman runc")
    layout = _Layout.of(root)
    layout.root.mkdir(parents=True, exist_ok=True)
    with _flock(layout.lock, timeout):
        _clean_leftovers(layout, timeout=30)
        # A fresh store on every start: the base images take about a second to make, and then
        # nothing an earlier run left behind (a crashed test's images) changes what tests see.
        shutil.rmtree(layout.graphroot, ignore_errors=True)
        _write_config(layout)
        proc = _spawn(podman, layout)
        _CHILDREN[proc.pid] = proc
        layout.pidfile.write_text(f"{proc.pid}\n")
        try:
            wait_until_ping(layout.socket, layout.log, proc, timeout, "podman")
        except HarnessUnavailable:
            _clean_leftovers(layout, timeout=10)
            raise
    return _owned(layout)


def stop_podman(engine: Engine, timeout: float = 30) -> None:
    """Stop a service we own and whatever containers it left; idempotent."""
    if not engine.owned or engine.root is None:
        return
    layout = _Layout.of(engine.root)
    with _flock(layout.lock, timeout + 30):
        _clean_leftovers(layout, timeout)


def _clean_leftovers(layout: _Layout, timeout: float) -> None:
    pid = host.read_pidfile(layout.pidfile)
    if pid is not None and pid in _our_services(layout):
        _kill_containers(layout.socket)
        host.terminate(pid, timeout, _CHILDREN.pop(pid, None))
    running = _our_services(layout)
    if running:
        raise HarnessUnavailable(
            f"podman pid {running[0]} still serves {layout.socket} without a usable pidfile"
        )
    layout.pidfile.unlink(missing_ok=True)
    # conmon outlives the service (it is the container's parent); ours name our run folder.
    for pid in _pids_naming(str(layout.runtime)):
        host.terminate(pid, 5)
    left = host.unmount_under(layout.runtime) + host.unmount_under(layout.graphroot)
    if left:
        raise HarnessUnavailable(f"still mounted: {', '.join(left)}")
    # Run state is only valid for the service that wrote it: a fresh tmp_dir makes podman
    # reset every container to stopped (its "refresh" after a reboot) instead of trusting it.
    shutil.rmtree(layout.runtime, ignore_errors=True)


def _our_services(layout: _Layout) -> list[int]:
    """Live podman processes serving our socket (a guard, read-only; never a kill list)."""
    return [
        pid
        for pid in _pids_naming(f"unix://{layout.socket}")
        if Path(host.cmdline(pid)[0]).name == "podman"
    ]


def _pids_naming(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            argv = host.cmdline(int(entry.name))
            if argv and any(marker in arg for arg in argv) and host.pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def _write_config(layout: _Layout) -> None:
    tmp = layout.runtime / "tmp"
    for folder in (layout.graphroot, layout.conf / "cni-plugins", layout.conf / "cni", tmp):
        folder.mkdir(parents=True, exist_ok=True)
    (layout.conf / "storage.conf").write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{layout.graphroot}"\n'
        f'runroot = "{layout.runtime / "run"}"\n'
        "[storage.options.overlay]\n"
        'mount_program = ""\n'
    )
    (layout.conf / "containers.conf").write_text(
        "[containers]\n"
        'netns = "none"\n'
        # podman asks for 1048576 open files and as many processes as the kernel allows, above
        # the hard limits a container host or CI runner sets: runc then refuses to start.
        f"default_ulimits = {_ulimits()}\n"
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{layout.root / "events.log"}"\n'
        f'tmp_dir = "{tmp}"\n'
        'lock_type = "file"\n'
        f'static_dir = "{layout.graphroot / "libpod"}"\n'
        f'volume_path = "{layout.graphroot / "volumes"}"\n'
        "[network]\n"
        'network_backend = "cni"\n'
        f'cni_plugin_dirs = ["{layout.conf / "cni-plugins"}"]\n'
        f'network_config_dir = "{layout.conf / "cni"}"\n'
    )
    (layout.conf / "registries.conf").write_text(
        "# dockops harness: nothing is ever pulled from outside this machine\n"
        "unqualified-search-registries = []\n"
        'short-name-mode = "disabled"\n'
        "[[registry]]\n"
        'location = "docker.io"\n'
        "blocked = true\n"
    )
    (layout.conf / "resolv.conf").write_text(
        "# dockops harness: no DNS beyond loopback\nnameserver 127.0.0.1\n"
        "options timeout:1 attempts:1\n"
    )


def _ulimits() -> str:
    # Fixed modest caps, lowered further to the hard limits here: without CAP_SYS_RESOURCE (a
    # container host, a CI runner) nothing may be raised, and podman itself runs with a lower
    # process limit than the shell that started it.
    wanted = {"nofile": (resource.RLIMIT_NOFILE, 4096), "nproc": (resource.RLIMIT_NPROC, 4096)}
    limits = []
    for name, (which, cap) in wanted.items():
        hard = resource.getrlimit(which)[1]
        value = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
        limits.append(f"{name}={value}:{value}")
    return json.dumps(limits)


def _spawn(podman: Path, layout: _Layout) -> subprocess.Popen[bytes]:
    argv = [
        str(podman),
        "--log-level=warn",
        "system",
        "service",
        "--time=0",
        f"unix://{layout.socket}",
    ]
    script = (
        'if [ -e /etc/resolv.conf ]; then mount --bind "$0" /etc/resolv.conf || exit 97; fi; '
        'exec "$@"'
    )
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    wrapped = [unshare, "--mount", "--propagation", "slave", "--", "/bin/sh", "-c", script]
    env = dict(
        os.environ,
        PATH=f"{os.environ.get('PATH', '')}:{_SANE_PATH}",
        CONTAINERS_CONF=str(layout.conf / "containers.conf"),
        CONTAINERS_STORAGE_CONF=str(layout.conf / "storage.conf"),
        CONTAINERS_REGISTRIES_CONF=str(layout.conf / "registries.conf"),
        **_NO_EGRESS_ENV,
    )
    for name in ("DOCKER_HOST", "CONTAINER_HOST", "XDG_RUNTIME_DIR"):
        env.pop(name, None)
    with open(layout.log, "wb") as log:
        return subprocess.Popen(
            [*wrapped, str(layout.conf / "resolv.conf"), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _kill_containers(socket_path: Path) -> None:
    """Kill and remove every container, best effort, so no conmon outlives the service."""
    try:
        status, body = _request(socket_path, "GET", "/containers/json?all=1")
        ids = [c["Id"] for c in json.loads(body)] if status == 200 else []
        for cid in ids:
            with suppress(OSError):
                _request(socket_path, "DELETE", f"/containers/{cid}?force=1&v=1", timeout=30)
    except (OSError, ValueError, KeyError, TypeError):
        pass
