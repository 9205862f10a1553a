"""Search Docker Hub (or any v1 search index named as HOST:PORT/term) through the daemon.

Podman searches the registries of its registries.conf for a term without a host (docker: Docker
Hub), asks an index for /v2/ before /v1/search (a v1-only index is "can't talk to a V1
container registry"), checks TLS on loopback unless told not to (docker: plain HTTP there, so
dockops tells podman tlsVerify=false for the indexes it treats as insecure, as for pulls and
pushes: podman_transfer.tls_params), answers libpod's fields (Name
with the index's host, Stars, Official "[OK]"), and 404 "image not known" for no hits, which
dockops reads as none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.core.images.podman_transfer import tls_params
from dockops.engine.errors import Missing, Refused
from dockops.engine.wire import Lost
from dockops.errors import InvalidInput, RegistryUnreachable
from dockops.reference import familiar_name

if TYPE_CHECKING:
    from dockops.engine.api import Engine

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
    engine: Engine,
    term: str,
    *,
    limit: int = 25,
    min_stars: int = 0,
    official_only: bool = False,
    timeout: float = SEARCH_TIMEOUT,
) -> list[SearchHit]:
    """Ask the daemon to search its index (Docker Hub, or HOST:PORT when the term names one).

    Args:
        engine: the engine.
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
    if not term.strip():
        raise InvalidInput("search: the term is empty")
    if not 1 <= limit <= 100:
        raise InvalidInput(f"search: --limit {limit} is outside 1..100")
    what = f"search {term}"
    podman = engine.is_podman
    host, slash, _ = term.partition("/")
    plain_http = bool(slash) and bool(tls_params(engine, host))
    try:
        found = engine.search(
            term,
            limit,
            what=what,
            timeout=timeout,
            tls_verify=False if plain_http else None,
        )
    except Lost as exc:
        raise RegistryUnreachable(f"{what}: the index did not answer within {timeout:g} s") from exc
    except Missing as exc:
        if not podman:
            raise RegistryUnreachable(exc.message) from exc
        found = []
    except Refused as exc:
        if exc.status == 400:
            raise InvalidInput(exc.message) from exc
        # The daemon answers 500 for every failure to talk to the index; podman wraps its
        # reason in a Go multierror ("1 error occurred: * couldn't search registry ...").
        raise RegistryUnreachable(re.sub(r"\d+ errors? occurred: \* ", "", exc.message)) from exc
    hits = [_podman_hit(item) if podman else _hit(item) for item in found]
    return [h for h in hits if h.stars >= min_stars and (h.official or not official_only)]


def _hit(item: dict[str, Any]) -> SearchHit:
    return SearchHit(
        name=str(item.get("name", "")),
        description=str(item.get("description") or ""),
        stars=int(item.get("star_count") or 0),
        official=bool(item.get("is_official")),
        automated=bool(item.get("is_automated")),
    )


def _podman_hit(item: dict[str, Any]) -> SearchHit:
    return SearchHit(
        name=familiar_name(str(item.get("Name", ""))),
        description=str(item.get("Description") or ""),
        stars=int(item.get("Stars") or 0),
        official=item.get("Official") == "[OK]",
        automated=item.get("Automated") == "[OK]",
    )
