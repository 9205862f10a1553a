"""`python -m tests.harness up|down|images [--engine docker|podman]`: a disposable engine from a
shell, CI or Makefile.

`up` prints exactly one line on stdout, `DOCKER_HOST=unix://...`, so a script can
`eval "export $(python3 -m tests.harness up)"`; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .engine import (
    ENV_DOCKER_HOST,
    HarnessUnavailable,
    default_root,
    engine_at,
    engine_from_env,
    ensure_packages,
    start_engine,
    stop_engine,
)


def _info(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr, flush=True)


def _up(root: Path, kind: str) -> int:
    started = time.monotonic()
    if kind == "podman":
        return _up_podman(root, started)
    engine = engine_from_env()
    if engine is None:
        ensure_packages()
        engine = start_engine(root)
        _info(f"engine ready at {engine.host} ({time.monotonic() - started:.1f}s), root {root}")
    else:
        ensure_packages(("docker-registry", "nginx", "busybox"))
        _info(f"using {ENV_DOCKER_HOST}={engine.host}")
    _images(engine.host)
    _info(f"up in {time.monotonic() - started:.1f}s")
    print(f"DOCKER_HOST={engine.host}", flush=True)
    return 0


def _up_podman(root: Path, started: float) -> int:
    from .podman import podman_from_env, start_podman

    engine = podman_from_env()
    if engine is None:
        ensure_packages(("podman", "runc", "docker-registry", "nginx", "busybox"))
        engine = start_podman(root)
        _info(f"podman ready at {engine.host} ({time.monotonic() - started:.1f}s), root {root}")
    _images(engine.host)
    _info(f"up in {time.monotonic() - started:.1f}s")
    print(f"DOCKER_HOST={engine.host}", flush=True)
    return 0


def _down_podman(root: Path) -> int:
    from .podman import podman_at, podman_from_env, stop_podman

    if podman_from_env() is None:
        stop_podman(podman_at(root))
        _info(f"podman at {root} stopped")
    return 0


def _down(root: Path, kind: str) -> int:
    if kind == "podman":
        return _down_podman(root)
    if engine_from_env() is not None:
        _info(f"{ENV_DOCKER_HOST} is set: that engine is not ours to stop")
        return 0
    started = time.monotonic()
    stop_engine(engine_at(root))
    _info(f"engine at {root} stopped ({time.monotonic() - started:.1f}s)")
    return 0


def _images(docker_host: str) -> None:
    from .images import ensure_base_images

    started = time.monotonic()
    ensure_base_images(docker_host, log=_info)
    _info(f"base images ready ({time.monotonic() - started:.2f}s)")


def _images_cmd() -> int:
    docker_host = os.environ.get("DOCKER_HOST") or os.environ.get(ENV_DOCKER_HOST)
    if not docker_host:
        _info("images needs DOCKER_HOST (e.g. from `up`)")
        return 2
    _images(docker_host)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start the engine, build images"), ("down", "stop the engine")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--root", type=Path, default=None, help="engine folder")
        sub.add_argument("--engine", choices=("docker", "podman"), default="docker")
    commands.add_parser("images", help="build the base images on $DOCKER_HOST")
    args = parser.parse_args(argv)
    try:
        if args.command == "images":
            return _images_cmd()
        if args.root is not None:
            root = args.root.absolute()
        elif args.engine == "podman":
            from .podman import default_podman_root

            root = default_podman_root()
        else:
            root = default_root()
        return _up(root, args.engine) if args.command == "up" else _down(root, args.engine)
    except HarnessUnavailable as exc:
        _info(f"unavailable: {exc}")
        return 3


if __name__ == "__main__":
    sys.exit(main())
