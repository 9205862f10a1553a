"""The disposable engine: a private dockerd for tests, demos and benchmarks.

It never touches the host's default engine: it has its own data-root, exec-root, pidfile and
socket, and it is stopped only through the pid in its own pidfile.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from dockops.engine.unix import UnixTransport
from dockops.engine.wire import Lost

from . import host

ENV_DOCKER_HOST = "DOCKOPS_TEST_DOCKER_HOST"
ENV_HARNESS_DIR = "DOCKOPS_HARNESS_DIR"
ENV_CERTS_D = "DOCKOPS_TEST_CERTS_D"

# Binary the harness needs -> Debian package that ships it.
PACKAGES = {
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "nginx": "nginx",
    "busybox": "busybox-static",
    "skopeo": "skopeo",  # reads what push --via direct wrote, as a second opinion
    "podman": "podman",  # the second engine (tests/harness/podman.py)
    "runc": "runc",
}

# sun_path holds 108 bytes with the NUL; containerd's longest socket adds 32 to the exec-root.
_SUN_PATH_MAX = 107
_LONGEST_SOCKET = "containerd/containerd.sock.ttrpc"

# dockerd goes to Docker Hub for any missing image (pull, run, create). Point its proxy at a
# dead loopback port so such a pull fails at once instead of connecting out (it still looks
# docker.io up in DNS first); loopback registries, the only ones tests use, bypass the proxy.
_NO_EGRESS_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "localhost,127.0.0.0/8,::1",
}
_SANE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Popen objects of the dockerds this process started, so stop_engine can reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class HarnessUnavailable(RuntimeError):
    """No engine can be had here; the message is one line saying why."""


@dataclass(frozen=True)
class Engine:
    host: str  # "unix:///abs/path/docker.sock"
    root: Path | None
    pidfile: Path | None
    owned: bool  # False for an engine named by DOCKOPS_TEST_DOCKER_HOST: never stopped by us
    # Where this engine reads registry CAs (its /etc/docker/certs.d); None when unknown (an
    # engine named by DOCKOPS_TEST_DOCKER_HOST without DOCKOPS_TEST_CERTS_D): trust tests skip.
    certs_d: Path | None = None
    kind: str = "docker"  # or "podman" (tests/harness/podman.py)


@dataclass(frozen=True)
class _Layout:
    """Where one engine root keeps its pieces; derived from the root alone, so `down` finds them."""

    root: Path
    data: Path
    runtime: Path  # holds exec-root and socket: the root itself, or a short /tmp folder
    exec_root: Path
    socket: Path
    pidfile: Path
    log: Path
    lock: Path
    etc_docker: Path  # mounted over /etc/docker in dockerd's namespace

    @property
    def certs_d(self) -> Path:
        return self.etc_docker / "certs.d"

    @classmethod
    def of(cls, root: Path) -> _Layout:
        root = Path(os.path.realpath(root))  # /proc/self/mounts shows real paths
        runtime = root
        if len(f"{root}/exec/{_LONGEST_SOCKET}") > _SUN_PATH_MAX:
            digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
            runtime = Path(f"/tmp/dockops-{digest}")
        return cls(
            root=root,
            data=root / "data",
            runtime=runtime,
            exec_root=runtime / "exec",
            socket=runtime / "docker.sock",
            pidfile=root / "docker.pid",
            log=root / "dockerd.log",
            lock=root / "harness.lock",
            etc_docker=root / "etc-docker",
        )

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


def default_root() -> Path:
    """`<repo>/.build/engine`, or DOCKOPS_HARNESS_DIR when set."""
    override = os.environ.get(ENV_HARNESS_DIR)
    if override:
        return Path(override).expanduser().absolute()
    return Path(__file__).resolve().parents[2] / ".build" / "engine"


def engine_from_env() -> Engine | None:
    """The engine named by DOCKOPS_TEST_DOCKER_HOST, if any; it belongs to someone else."""
    named = os.environ.get(ENV_DOCKER_HOST)
    if not named:
        return None
    certs_d = os.environ.get(ENV_CERTS_D)
    return Engine(
        host=named, root=None, pidfile=None, owned=False, certs_d=Path(certs_d) if certs_d else None
    )


def engine_at(root: Path) -> Engine:
    """The owned engine that lives (or would live) at `root`, without starting anything."""
    layout = _Layout.of(root)
    return _owned(layout)


def _owned(layout: _Layout) -> Engine:
    return Engine(
        host=layout.host,
        root=layout.root,
        pidfile=layout.pidfile,
        owned=True,
        certs_d=layout.certs_d,
    )


def ensure_packages(need: tuple[str, ...] = tuple(PACKAGES)) -> None:
    """Install the Debian packages behind any missing binary, or say why that cannot be done.

    Raises:
        HarnessUnavailable: a binary is missing and apt-get cannot be used, or the install failed.
    """
    missing = [name for name in need if _find(name) is None]
    if not missing:
        return
    packages = sorted({PACKAGES.get(name, name) for name in missing})
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise HarnessUnavailable(
            f"missing {', '.join(missing)}: install {' '.join(packages)} (needs root and apt-get)"
        )
    _apt_install(packages)
    still = [name for name in missing if _find(name) is None]
    if still:
        raise HarnessUnavailable(f"still missing after apt-get install: {', '.join(still)}")


def _find(name: str) -> Path | None:
    # Only a static busybox can be copied into a scratch image without its libraries.
    return host.find_binary(name, static=name == "busybox")


def _apt_install(packages: list[str]) -> None:
    log = Path(tempfile.gettempdir()) / "dockops-harness-apt.log"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    commands = [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *packages],
    ]
    with _no_service_starts(), open(log, "wb") as out:
        for command in commands:
            done = subprocess.run(command, stdout=out, stderr=out, env=env, check=False)
            if done.returncode:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise HarnessUnavailable(
                    f"{' '.join(command)} failed (log {log}): " + " | ".join(tail)
                )


@contextmanager
def _no_service_starts() -> Iterator[None]:
    """Keep the packages' postinst from starting the host's dockerd and nginx on port 80.

    Debian's policy-rc.d hook exists for exactly this; images built by debuerreotype ship one
    already, in which case it is left alone.
    """
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():
        yield
        return
    policy.write_text("#!/bin/sh\n# dockops harness: no service starts during install\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def start_engine(root: Path, timeout: float = 60) -> Engine:
    """Start a private dockerd on `root` and wait until it answers /_ping.

    A leftover engine of ours on the same root is stopped first; its mounts and stale containerd
    state are cleaned up, while the data-root (with its cached images) is kept.

    Raises:
        HarnessUnavailable: not root, no dockerd, or it exited or did not answer in `timeout`.
    """
    if os.geteuid() != 0:
        raise HarnessUnavailable(f"starting dockerd needs root; or set {ENV_DOCKER_HOST}")
    dockerd = host.find_binary("dockerd")
    if dockerd is None:
        raise HarnessUnavailable("dockerd not found: install docker.io (ensure_packages)")
    layout = _Layout.of(root)
    layout.root.mkdir(parents=True, exist_ok=True)
    with _flock(layout.lock, timeout):
        _clean_leftovers(layout, timeout=30)
        for folder in (layout.data, layout.runtime, layout.certs_d):
            folder.mkdir(parents=True, exist_ok=True)
        proc = _spawn(dockerd, layout)
        _CHILDREN[proc.pid] = proc
        try:
            _wait_ready(layout, proc, timeout)
        except HarnessUnavailable:
            host.terminate(proc.pid, 10, _CHILDREN.pop(proc.pid))
            _clean_leftovers(layout, timeout=10)
            raise
    return _owned(layout)


def stop_engine(engine: Engine, timeout: float = 30) -> None:
    """Stop an engine we own (SIGTERM, then SIGKILL after `timeout`) and unmount its leftovers.

    Idempotent; an engine we do not own is left alone.
    """
    if not engine.owned or engine.root is None:
        return
    layout = _Layout.of(engine.root)
    with _flock(layout.lock, timeout + 30):
        _clean_leftovers(layout, timeout)


def _clean_leftovers(layout: _Layout, timeout: float) -> None:
    """Stop our dockerd if it runs, then clear what a hard stop leaves: processes, mounts, state."""
    pid = host.read_pidfile(layout.pidfile)
    if pid is not None and pid in _our_dockerds(layout):
        _kill_containers(layout.socket)
        host.terminate(pid, timeout, _CHILDREN.pop(pid, None))
    # Anything still running on our data-root (the pidfile's pid surviving SIGKILL, or a
    # dockerd whose pidfile was lost) owns the mounts and state below: leave them alone.
    running = _our_dockerds(layout)
    if running:
        raise HarnessUnavailable(
            f"dockerd pid {running[0]} still runs on {layout.data} without a usable pidfile"
        )
    layout.pidfile.unlink(missing_ok=True)
    # A dockerd that died hard leaves its containerd, shims and containers running; a clean
    # stop leaves nothing, so this only finds work after a crash or SIGKILL.
    containers = layout.data / "containers"
    ids = [p.name for p in containers.iterdir()] if containers.is_dir() else []
    host.kill_leftovers(layout.exec_root, ids)
    left = host.unmount_under(layout.root)
    if layout.runtime != layout.root:
        left += host.unmount_under(layout.runtime)
    if left:
        raise HarnessUnavailable(f"still mounted under {layout.root}: {', '.join(left)}")
    # containerd state under the exec-root is only valid for the containerd that wrote it.
    shutil.rmtree(layout.exec_root, ignore_errors=True)
    layout.socket.unlink(missing_ok=True)
    if layout.runtime != layout.root:
        with suppress(OSError):  # the short /tmp folder, once empty
            layout.runtime.rmdir()


def _our_dockerds(layout: _Layout) -> list[int]:
    """Live dockerd processes whose command line names our data-root.

    Used to trust a pidfile (its pid may have been reused) and, read-only, as a guard: nothing
    is stopped by this scan, only by the pid in the pidfile.
    """
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if _runs_on(host.cmdline(pid), layout.data) and host.pid_alive(pid)]


def _runs_on(argv: list[str], data: Path) -> bool:
    """A dockerd command line with our data-root, written `--data-root=D` or `--data-root D`."""
    if not argv or Path(argv[0]).name != "dockerd":
        return False
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    return f"--data-root={data}" in argv or ("--data-root", str(data)) in pairs


def _spawn(dockerd: Path, layout: _Layout) -> subprocess.Popen[bytes]:
    argv = [
        str(dockerd),
        f"--data-root={layout.data}",
        f"--exec-root={layout.exec_root}",
        f"--pidfile={layout.pidfile}",
        f"--host=unix://{layout.socket}",
        "--bridge=none",
        "--iptables=false",
        "--ip-masq=false",
        "--log-level=warn",
        # If a system containerd is running dockerd uses it; our own namespaces keep our
        # containers apart from any other engine's there.
        f"--containerd-namespace=dockops-{layout.runtime.name}",
        f"--containerd-plugins-namespace=dockops-{layout.runtime.name}-plugins",
    ]
    argv = _in_loopback_dns_namespace(argv, layout)
    env = dict(os.environ, PATH=f"{os.environ.get('PATH', '')}:{_SANE_PATH}", **_NO_EGRESS_ENV)
    env.pop("DOCKER_HOST", None)
    with open(layout.log, "wb") as log:
        # A new session: a Ctrl-C meant for the test run must not reach the engine mid-write.
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _in_loopback_dns_namespace(argv: list[str], layout: _Layout) -> list[str]:
    """Run dockerd in its own mount namespace whose /etc/resolv.conf names only 127.0.0.1 and
    whose /etc/docker is the engine root's own.

    The proxy above stops pulls from dialing out, but the daemon (and every host-network
    container, which inherits the daemon's resolv.conf) still resolves names such as
    registry-1.docker.io first: the machine's resolver is not on loopback. With this, every
    such lookup goes to 127.0.0.1:53, where nothing answers, and fails at once. Propagation
    is `slave` so mounts made on the host later (a test's tmpfs) are still seen by dockerd.
    `unshare` without --fork execs in place, so the pid stays dockerd's.

    Its own /etc/docker keeps the host's daemon.json and key.json out of the harness engine,
    and gives it a certs.d of its own: tests trust their registries' CAs there, never in the
    host's /etc/docker/certs.d. (The host gets an empty /etc/docker to mount on if it has none,
    as docker.io would make anyway.)
    """
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    resolv = layout.root / "resolv.conf"
    resolv.write_text(
        "# dockops harness: no DNS beyond loopback\nnameserver 127.0.0.1\n"
        "options timeout:1 attempts:1\n"
    )
    script = (
        'if [ -e /etc/resolv.conf ]; then mount --bind "$0" /etc/resolv.conf || exit 97; fi; '
        'mkdir -p /etc/docker && mount --bind "$1" /etc/docker || exit 98; '
        'shift; exec "$@"'
    )
    return [
        unshare,
        "--mount",
        "--propagation",
        "slave",
        "--",
        "/bin/sh",
        "-c",
        script,
        str(resolv),
        str(layout.etc_docker),
        *argv,
    ]


def _wait_ready(layout: _Layout, proc: subprocess.Popen[bytes], timeout: float) -> None:
    wait_until_ping(layout.socket, layout.log, proc, timeout, "dockerd")


def wait_until_ping(
    socket_path: Path, log: Path, proc: subprocess.Popen[bytes], timeout: float, name: str
) -> None:
    """Wait until the engine `proc` started answers /_ping on `socket_path`.

    Raises:
        HarnessUnavailable: it exited, or did not answer in `timeout`; with its log's tail.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessUnavailable(f"{name} exited with {proc.returncode}: {_log_tail(log)}")
        if ping(socket_path):
            return
        time.sleep(0.15)
    raise HarnessUnavailable(f"{name} did not answer /_ping in {timeout:.0f}s: {_log_tail(log)}")


def ping(socket_path: Path, timeout: float = 2.0) -> bool:
    """True when the engine behind the unix socket answers GET /_ping with 200."""
    try:
        return _request(socket_path, "GET", "/_ping", timeout)[0] == 200
    except OSError:
        return False


def _kill_containers(socket_path: Path) -> None:
    """SIGKILL every running container, best effort.

    On SIGTERM dockerd stops each container with its stop timeout, and a test container whose
    pid 1 ignores SIGTERM (a shell, `sleep`) would hold the shutdown for 10 s.
    """
    try:
        status, body = _request(socket_path, "GET", "/containers/json")
        ids = [c["Id"] for c in json.loads(body)] if status == 200 else []
        for cid in ids:
            _request(socket_path, "POST", f"/containers/{cid}/kill")
    except (OSError, ValueError, KeyError, TypeError):
        pass  # the SIGTERM that follows still stops them, only slower


def _request(socket_path: Path, method: str, url: str, timeout: float = 10) -> tuple[int, bytes]:
    """One unversioned request; a failed connection as OSError, as the callers expect."""
    transport = UnixTransport(str(socket_path), "", timeout)
    try:
        answer = transport.call(method, url)
    except Lost as exc:
        raise OSError(exc.reason) from exc
    finally:
        transport.close()
    return answer.status, answer.body


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return f"(no log at {log})"
    return " | ".join(tail) + f" (log {log})"


@contextmanager
def _flock(path: Path, timeout: float) -> Iterator[None]:
    try:
        with host.flock(path, timeout):
            yield
    except TimeoutError as exc:
        raise HarnessUnavailable(str(exc)) from None
