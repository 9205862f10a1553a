"""Search Docker Hub (or any v1 search index named as HOST:PORT/term) through the daemon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.engine.address import engine_errors
from dockops.errors import InvalidInput, RegistryUnreachable

if TYPE_CHECKING:
    import docker

# The daemon sets no deadline of its own on the index: a silent index kept a search open for
# over 60 s here. A search is interactive, so it gets a short one.
SEARCH_TIMEOUT = 20.0


@dataclass(frozen=True)
class SearchHit:
    name: str
    description: str
    stars: int
    official: bool
    automated: bool


def search_images(
    client: docker.DockerClient,
    term: str,
    *,
    limit: int = 25,
    min_stars: int = 0,
    official_only: bool = False,
    timeout: float = SEARCH_TIMEOUT,
) -> list[SearchHit]:
    """Ask the daemon to search its index (Docker Hub, or HOST:PORT when the term names one).

    Args:
        client: the engine.
        term: the search text; ``HOST:PORT/text`` asks that host's v1 search endpoint.
        limit: most results the index returns (1-100), before the filters below, as the
            daemon applies them.
        min_stars: keep results with at least this many stars.
        official_only: keep official images only.
        timeout: seconds to wait for the daemon's answer.

    Returns:
        The hits in the index's order.

    Raises:
        InvalidInput: an empty term or a limit out of range, or the index refused the term.
        RegistryUnreachable: the daemon could not reach the index, or it did not answer in time
            (the message is the daemon's reason).
        EngineUnreachable: no engine.
    """
    import docker
    import requests

    if not term.strip():
        raise InvalidInput("search: the term is empty")
    if not 1 <= limit <= 100:
        raise InvalidInput(f"search: --limit {limit} is outside 1..100")
    what = f"search {term}"
    saved = client.api.timeout
    client.api.timeout = timeout
    try:
        with engine_errors(what):
            try:
                found: list[dict[str, Any]] = client.api.search(term, limit=limit)
            except requests.exceptions.ReadTimeout as exc:
                raise RegistryUnreachable(
                    f"{what}: the index did not answer within {timeout:g} s"
                ) from exc
            except docker.errors.APIError as exc:
                text = str(exc.explanation or exc)
                if exc.response is not None and exc.response.status_code == 400:
                    raise InvalidInput(f"{what}: {text}") from exc
                # The daemon answers 500 for every failure to talk to the index.
                raise RegistryUnreachable(f"{what}: {text}") from exc
    finally:
        client.api.timeout = saved
    hits = [
        SearchHit(
            name=str(item.get("name", "")),
            description=str(item.get("description") or ""),
            stars=int(item.get("star_count") or 0),
            official=bool(item.get("is_official")),
            automated=bool(item.get("is_automated")),
        )
        for item in found
    ]
    return [h for h in hits if h.stars >= min_stars and (h.official or not official_only)]
