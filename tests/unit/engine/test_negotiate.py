"""The API version dockops speaks, from real engines' /version answers: the lower of the
engine's newest and dockops's, as the docker CLI picks it; an engine too old or too new is
refused in one line, exit 3."""

from __future__ import annotations

from typing import Any

import pytest

from dockops.engine.negotiate import Unsupported, negotiate
from dockops.errors import ExitCode

DOCKER_20_10 = {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12"}
DOCKER_25 = {"Version": "25.0.3", "ApiVersion": "1.44", "MinAPIVersion": "1.24"}
PODMAN_4_3 = {
    "Version": "4.3.1",
    "ApiVersion": "1.41",
    "MinAPIVersion": "1.24",
    "Components": [
        {"Name": "Podman Engine", "Version": "4.3.1", "Details": {"APIVersion": "4.3.1"}}
    ],
}
DOCKER_19_03 = {"Version": "19.03.15", "ApiVersion": "1.40", "MinAPIVersion": "1.12"}
ADDRESS = "unix:///run/docker.sock"


@pytest.mark.parametrize("server", [DOCKER_20_10, DOCKER_25, PODMAN_4_3])
def test_the_lower_of_the_engines_newest_and_dockops_newest(server: dict[str, Any]) -> None:
    assert negotiate(server, ADDRESS) == "1.41"


def test_an_engine_without_a_minimum_is_taken_at_its_newest() -> None:
    assert negotiate({"ApiVersion": "1.43"}, ADDRESS) == "1.41"


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (
            DOCKER_19_03,
            "the engine at unix:///run/docker.sock (19.03.15) speaks Engine API 1.40 at most; "
            "dockops needs 1.41 or newer (Docker 20.10, Podman 4)",
        ),
        (
            {"Version": "30.0.0", "ApiVersion": "1.52", "MinAPIVersion": "1.44"},
            "the engine at unix:///run/docker.sock (30.0.0) needs Engine API 1.44 or newer; "
            "this dockops speaks 1.41 at most",
        ),
        (
            {"ApiVersion": "one"},
            "the engine at unix:///run/docker.sock names no Engine API version dockops can "
            "read: 'one'",
        ),
    ],
)
def test_an_engine_dockops_cannot_speak_with_is_refused_in_one_line(
    server: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsupported) as refused:
        negotiate(server, ADDRESS)
    assert refused.value.message == message
    assert refused.value.exit_code == ExitCode.ENGINE_UNREACHABLE
