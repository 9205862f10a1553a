"""doctor over a fake engine: every failure is a check, never an exception."""

from __future__ import annotations

from dockops.core.doctor import backend_checks, run_doctor
from dockops.core.registry_server import deploy
from dockops.engine.api import Engine
from dockops.engine.negotiate import negotiate
from dockops.errors import EngineUnreachable
from tests.support.fake_engine import fake_engine

HEALTHY = {
    "GET /version": (200, {"Version": "20.10.24", "ApiVersion": "1.41"}),
    "GET /info": (200, {"Driver": "overlay2", "DockerRootDir": "/nonexistent/docker"}),
    "GET /system/df": (
        200,
        {
            "Images": [{"Id": "sha256:a", "RepoTags": ["a:1"]}, {"Id": "sha256:b", "RepoTags": []}],
            "LayersSize": 9,
        },
    ),
}


def test_a_healthy_engine_passes_every_check() -> None:
    engine = fake_engine(HEALTHY)
    report = run_doctor(lambda: engine)
    assert report.exit_code == 0
    assert (report.images, report.dangling, report.storage_driver) == (2, 1, "overlay2")
    assert report.data_root_free_bytes is None  # not on this machine
    assert (report.engine_product, report.engine_version) == ("Docker Engine", "20.10.24")
    assert report.checks[0].detail.endswith(" answers, Docker Engine 20.10.24")
    assert [c.detail for c in report.checks[1:]] == [
        "API 1.41 (the engine offers up to 1.41)",
        "storage driver overlay2",
        "2 images, 9B in layers",
    ]


def test_a_newer_docker_is_spoken_to_in_the_negotiated_version() -> None:
    docker_25 = {
        "Version": "25.0.3",
        "ApiVersion": "1.44",
        "MinAPIVersion": "1.24",
        "Components": [{"Name": "Engine", "Version": "25.0.3"}],
    }
    report = run_doctor(lambda: fake_engine({**HEALTHY, "GET /version": (200, docker_25)}))
    assert report.exit_code == 0
    assert (report.api_version, report.engine_api_version) == ("1.41", "1.44")
    assert report.checks[1].detail == "API 1.41 (the engine offers 1.24 to 1.44)"


def test_podman_is_named_as_podman_and_its_df_read_by_image() -> None:
    # Podman 4.3's compat answers: /version's Components name it; its df lists an image once
    # per tag (the tag alone, <none> for none) and says LayersSize 0.
    podman = {
        "GET /version": (
            200,
            {
                "Version": "4.3.1",
                "ApiVersion": "1.41",
                "MinAPIVersion": "1.24",
                "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}],
            },
        ),
        "GET /info": (200, {"Driver": "overlay", "DockerRootDir": "/nonexistent/storage"}),
        "GET /system/df": (
            200,
            {
                "LayersSize": 0,
                "Images": [
                    {"Id": "aa", "RepoTags": ["stable"]},
                    {"Id": "aa", "RepoTags": ["latest"]},
                    {"Id": "bb", "RepoTags": ["<none>"]},
                ],
            },
        ),
    }
    report = run_doctor(lambda: fake_engine(podman))
    assert report.exit_code == 0
    assert (report.engine_product, report.engine_version) == ("Podman Engine", "4.3.1")
    assert (report.images, report.dangling, report.images_bytes) == (2, 1, None)
    assert report.checks[0].detail.endswith(" answers, Podman Engine 4.3.1")
    assert report.checks[3].detail == "2 images"  # no total it does not know


def test_an_engine_dockops_cannot_speak_with_fails_the_engine_check_with_exit_3() -> None:
    def connect() -> Engine:
        # What connect() does with an old engine's /version.
        negotiate({"Version": "19.03.15", "ApiVersion": "1.40"}, "unix:///x.sock")
        raise AssertionError("negotiated")

    report = run_doctor(connect)
    assert report.exit_code == 3 and [c.name for c in report.checks] == ["engine"]
    assert report.checks[0].detail.startswith("the engine at unix:///x.sock (19.03.15) speaks")


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
