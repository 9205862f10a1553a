"""login / logout: credentials are checked against the registry before they are stored, and
stored where the docker CLI (and docker-py) read them."""

from __future__ import annotations

from dataclasses import dataclass

from dockops.core.registry.client import RegistryClient
from dockops.core.registry.credentials import (
    Credentials,
    docker_config_path,
    erase_credentials,
    store_credentials,
)
from dockops.errors import RegistryUnreachable


@dataclass(frozen=True)
class LoginResult:
    registry: str
    username: str
    stored_in: str  # "config.json" or "helper docker-credential-NAME"
    config: str  # the config.json path


def login(registry: str, username: str, password: str) -> LoginResult:
    """Check `username`/`password` with an authenticated GET /v2/, then store them.

    Raises:
        RegistryUnreachable: unreachable, TLS failure, or the credentials were refused.
        InvalidInput: a credential helper is configured but missing or failing.
    """
    with RegistryClient(
        registry, credentials=Credentials(username=username, password=password, source="login")
    ) as api:
        answer = api.ping()
    if answer.status != 200:
        raise RegistryUnreachable(f"{registry}: /v2/ answered {answer.status} to the login")
    where = store_credentials(registry, username, password)
    return LoginResult(
        registry=registry, username=username, stored_in=where, config=str(docker_config_path())
    )


@dataclass(frozen=True)
class LogoutResult:
    registry: str
    removed: bool


def logout(registry: str) -> LogoutResult:
    return LogoutResult(registry=registry, removed=erase_credentials(registry))
