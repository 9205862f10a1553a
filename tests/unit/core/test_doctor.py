"""doctor over a fake engine: every failure is a check, never an exception."""

from __future__ import annotations

from dockops.core.doctor import backend_checks, run_doctor
from dockops.core.registry_server import deploy
from dockops.engine.api import Engine
from dockops.errors import EngineUnreachable
from tests.support.fake_engine import fake_engine

HEALTHY = {
    "GET /version": (200, {"Version": "20.10.24", "ApiVersion": "1.41"}),
    "GET /info": (200, {"Driver": "overlay2", "DockerRootDir": "/nonexistent/docker"}),
    "GET /system/df": (200, {"Images": [{"RepoTags": ["a:1"]}, {"RepoTags": []}], "LayersSize": 9}),
}


def test_a_healthy_engine_passes_every_check() -> None:
    engine = fake_engine(HEALTHY)
    report = run_doctor(lambda: engine)
    assert report.exit_code == 0
    assert (report.images, report.dangling, report.storage_driver) == (2, 1, "overlay2")
    assert report.data_root_free_bytes is None  # not on this machine


def test_an_old_api_fails_with_exit_1() -> None:
    old = {**HEALTHY, "GET /version": (200, {"Version": "18.09", "ApiVersion": "1.39"})}
    report = run_doctor(lambda: fake_engine(old))
    assert report.exit_code == 1 and report.checks[1].detail == "API 1.39, dockops needs 1.41+"


def test_an_unreachable_engine_is_a_failed_check() -> None:
    def connect() -> Engine:
        raise EngineUnreachable("cannot reach the Docker engine at unix:///x.sock: refused")

    report = run_doctor(connect)
    assert report.exit_code == 3 and report.checks[0].detail.startswith("cannot reach")
    assert backend_checks(connect, "127.0.0.1:5443") == ()


def test_an_open_backend_is_a_warning() -> None:
    frontend = {"Labels": {deploy.LABEL: "reg", deploy.ROLE: "frontend"}}
    backend = {
        "Config": {"Labels": {deploy.LABEL: "reg", deploy.ROLE: "registry"}},
        "HostConfig": {"PortBindings": {"5000/tcp": [{"HostIp": "", "HostPort": "5000"}]}},
    }
    engine = fake_engine(
        {"GET /containers/json": (200, [frontend]), "GET /containers/reg/json": (200, backend)}
    )
    (check,) = backend_checks(lambda: engine, "127.0.0.1:5443")
    assert check.ok and check.warning and "0.0.0.0:5000" in check.detail
    gone = fake_engine({"GET /containers/json": (200, [frontend])})  # the backend is gone
    assert backend_checks(lambda: gone, "127.0.0.1:5443") == ()
