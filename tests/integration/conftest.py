"""The disposable engines for integration tests, and per-test cleanup of what a test created.

The engine is the harness's own dockerd (tests/harness) unless DOCKOPS_TEST_DOCKER_HOST names
one. The shared suite (the folders in BOTH_ENGINES) runs once on it and once on the harness's
Podman service (or DOCKOPS_TEST_PODMAN_HOST): its tests are named `…[docker]` and `…[podman]`,
and `engine.kind` says which one a test runs on. With CI=true a missing engine fails the run;
elsewhere the tests skip with one reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dockops import retry
from dockops.retry import RetryPolicy
from tests.harness.engine import (
    Engine,
    HarnessUnavailable,
    default_root,
    engine_from_env,
    ensure_packages,
    start_engine,
    stop_engine,
)
from tests.harness.images import ensure_base_images
from tests.support.registry_server import Registry, registry

# The `secured` fixture (a registry behind `registry secure`), for every test that meets one.
from tests.support.secured import secured  # noqa: F401

if TYPE_CHECKING:
    import docker

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# The folders of tests/integration whose tests run on both engines: the image lifecycle,
# archives, cleanup and push-private. Registry server and engine-contract tests stay on dockerd.
BOTH_ENGINES = ("images", "archive", "cleanup", "push_private")
# DOCKOPS_TEST_ENGINES=docker runs the shared suite on dockerd alone (a laptop without podman).
ENGINE_KINDS = tuple(os.environ.get("DOCKOPS_TEST_ENGINES", "docker,podman").split(","))
ALLOWED_NETWORK_MODES = {"none", "host"}


_NOT_RUN = pytest.StashKey[str]()


def _unavailable() -> str | None:
    """Why no engine can be had, when that is plain before starting anything (the laptop case)."""
    if engine_from_env() is None and os.geteuid() != 0:
        return "not root, and DOCKOPS_TEST_DOCKER_HOST names no engine"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if "tests/integration/" in str(item.path)]
    for item in ours:
        item.add_marker(pytest.mark.engine)
    reason = _unavailable() if ours else None
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI needs the disposable Docker engine: {reason}")
    # One line for the whole set rather than one skip line per test file.
    config.hook.pytest_deselected(items=ours)
    items[:] = [item for item in items if item not in ours]
    config.stash[_NOT_RUN] = f"{len(ours)} integration tests not run: {reason}"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if _NOT_RUN in config.stash:
        terminalreporter.write_line(config.stash[_NOT_RUN], yellow=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" not in metafunc.fixturenames:
        return
    folder = Path(str(metafunc.definition.path)).parent.name
    if folder in BOTH_ENGINES:
        # @pytest.mark.engines("podman"): a difference pinned on one engine runs there only.
        only = metafunc.definition.get_closest_marker("engines")
        kinds = [k for k in ENGINE_KINDS if only is None or k in only.args]
        metafunc.parametrize("engine_kind", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def engine_kind(request: pytest.FixtureRequest) -> str:
    """ "docker" or "podman": which engine the test runs on (docker unless parametrized)."""
    return str(getattr(request, "param", "docker"))


def _no_engine(exc: HarnessUnavailable, what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the disposable {what}: {exc}", pytrace=False)
    pytest.skip(f"no disposable {what} here: {exc}")


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    named = engine_from_env()
    try:
        if named is not None:
            engine = named
        else:
            ensure_packages()
            engine = start_engine(default_root())
    except HarnessUnavailable as exc:
        _no_engine(exc, "Docker engine")
        raise
    try:
        ensure_base_images(engine.host)
        yield engine
    finally:
        stop_engine(engine)


@pytest.fixture(scope="session")
def podman_engine() -> Iterator[Engine]:
    from tests.harness.podman import default_podman_root, podman_from_env, start_podman, stop_podman

    named = podman_from_env()
    try:
        if named is not None:
            engine = named
        else:
            ensure_packages(("podman", "runc", "docker-registry", "nginx", "busybox"))
            engine = start_podman(default_podman_root())
    except HarnessUnavailable as exc:
        _no_engine(exc, "Podman service")
        raise
    try:
        ensure_base_images(engine.host)
        yield engine
    finally:
        stop_podman(engine)


@pytest.fixture(scope="session")
def engine(engine_kind: str, request: pytest.FixtureRequest) -> Engine:
    """The engine the test runs on; both stay up for the whole session once started."""
    found: Engine = request.getfixturevalue(f"{engine_kind}_engine")
    return found


def off_loopback_containers(client: docker.DockerClient, known: set[str]) -> list[str]:
    """Containers not in `known` whose network is neither none nor host."""
    # The mode is read from inspect: podman's container list has no HostConfig.
    modes = {
        c["Names"][0]: client.api.inspect_container(c["Id"])["HostConfig"]["NetworkMode"]
        for c in client.api.containers(all=True)
        if c["Id"] not in known
    }
    return [f"{name}: {mode}" for name, mode in modes.items() if mode not in ALLOWED_NETWORK_MODES]


def _remove_new_images(client: docker.DockerClient, ids: set[str], tags: set[str]) -> None:
    """Remove the images a test made, and the tags it put on images that were there before."""
    import docker

    for image in client.api.images(all=True):
        if image["Id"] in ids:
            # A tag a test put on a kept image (busybox) would leak into the next test.
            for tag in set(image["RepoTags"] or ()) - tags - {"<none>:<none>"}:
                client.api.remove_image(tag, noprune=True)
    # Children before parents: an image with dependent child images cannot be removed yet.
    for _ in range(10):
        left = [i["Id"] for i in client.api.images(all=True) if i["Id"] not in ids]
        if not left:
            return
        for image_id in left:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_image(image_id, force=True)


@pytest.fixture
def docker_env(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[docker.DockerClient]:
    """Point dockops (DOCKER_HOST) at the disposable engine, with a throw-away docker and dockops
    config; after the test, remove every container and image it created, and fail the test if
    one of its containers had a network other than none or host."""
    import docker

    for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKOPS_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    client = docker.DockerClient(base_url=engine.host, version="auto", timeout=120)
    images_before = {i["Id"] for i in client.api.images(all=True)}
    tags_before = {t for i in client.api.images(all=True) for t in i["RepoTags"] or ()}
    containers_before = {c["Id"] for c in client.api.containers(all=True)}
    volumes_before = {v["Name"] for v in client.api.volumes().get("Volumes") or []}
    networks_before = {n["Id"] for n in client.api.networks()}
    yield client

    bad_networks = off_loopback_containers(client, containers_before)
    for container in client.api.containers(all=True):
        if container["Id"] not in containers_before:
            client.api.remove_container(container["Id"], force=True, v=True)
    _remove_new_images(client, images_before, tags_before)
    for volume in client.api.volumes().get("Volumes") or []:
        if volume["Name"] not in volumes_before:
            client.api.remove_volume(volume["Name"], force=True)
    for network in client.api.networks():
        if network["Id"] not in networks_before:
            client.api.remove_network(network["Id"])
    client.close()
    assert not bad_networks, f"containers must use network none or host: {bad_networks}"


@pytest.fixture
def reg(docker_env: docker.DockerClient) -> Iterator[Registry]:
    """A registry:2 of the test's own on a free 127.0.0.1 port."""
    with registry(docker_env) as running:
        yield running


@pytest.fixture
def fast_retries(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """dockops's retry policy with waits of a few hundredths of a second; 3 attempts, or the
    number given by `@pytest.mark.parametrize("fast_retries", [N], indirect=True)`."""
    policy = RetryPolicy(attempts=getattr(request, "param", 3), first_wait=0.05, max_wait=0.2)
    monkeypatch.setattr(retry, "TRANSFER", policy)
    return policy
