"""The Podman service the *-podman suites measure, and how each contender is pointed at it.

It is the harness's (tests/harness/podman.py): scripts/with-engine.sh starts it beside the
dockerd when WITH_PODMAN is set (`make bench` sets it when SUITES names a podman suite, or
names none) and stops it by its pidfile after. The bench learns its socket from
DOCKOPS_TEST_PODMAN_HOST, the variable that names one's own Podman service to the tests, so a
service of your own is measured the same way (and never stopped).

Every contender talks to that one service, so all of them measure the same storage: the podman
CLI as its remote client (`podman --remote --url unix://SOCKET`; a plain `podman` would use the
host's own storage), curl on its socket, dockops and docker-py through DOCKER_HOST.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

from tests.harness.podman import ENV_PODMAN_HOST


@dataclass(frozen=True)
class Podman:
    host: str  # unix://SOCKET
    cli: str  # the podman binary

    @property
    def socket(self) -> str:
        return self.host.removeprefix("unix://")

    def command(self, *args: str) -> list[str]:
        return [self.cli, "--remote", "--url", self.host, *args]

    def env(self) -> dict[str, str]:
        """Ours, with DOCKER_HOST naming the service: how dockops is pointed at it."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def client(self, timeout: int = 600) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=timeout)


def find() -> Podman | str:
    """The service to measure, or why there is none."""
    host = os.environ.get(ENV_PODMAN_HOST, "")
    if not host.startswith("unix://"):
        return f"{ENV_PODMAN_HOST} names no unix socket; run `make bench SUITES=...-podman`"
    cli = shutil.which("podman")
    if cli is None:
        return "no podman CLI (apt-get install podman)"
    return Podman(host=host, cli=cli)


def load_average() -> str:
    """The machine's load now: it is shared, and a figure means little without it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def describe(podman: Podman) -> str:
    """The service's version, API and storage driver, for the environment table."""
    client = podman.client(timeout=20)
    try:
        version = client.version()
        info = client.info()
    finally:
        client.close()
    return (
        f"{version.get('Version')} (API {version.get('ApiVersion')}, {info.get('Driver')}, "
        f"{podman.host})"
    )
