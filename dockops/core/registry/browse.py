"""Reading a registry: the catalog (all pages), tags, one manifest in detail, and search.

registry:2 has a catalog but no search, so search is a filter over the catalog plus the tags of
what matched. Pages follow the `Link: <…>; rel="next"` header (a relative URL, resolved against
the request); a registry whose `catalog.maxentries` is below the page size asked answers 400
PAGINATION_NUMBER_INVALID, and is then asked again without a page size, its own maximum.
A registry whose pages lead back to one already read (by Link or by redirect), or on past
MAX_PAGES, is refused.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from dockops.core.registry.client import MANIFEST_MAX, MANIFEST_TYPES, RegistryClient
from dockops.errors import EngineRefused, InvalidInput

PAGE = 1000  # distribution's default catalog.maxentries
# 10,000 pages are ten million repositories at PAGE: no private registry has that many, but a
# broken one that mints a new Link on every page would otherwise be followed for ever.
MAX_PAGES = 10_000
INDEX_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


def _pages(
    api: RegistryClient,
    path: str,
    key: str,
    *,
    sized: bool = True,
    seen: set[str] | None = None,
) -> Iterator[str]:
    """Every item of a paged list (`repositories` or `tags`), following Link headers.

    Raises:
        EngineRefused: a page is not a JSON list of `key`, or the pages loop or never end.
    """
    url: str | None = f"{path}?n={PAGE}" if sized else path
    seen = set() if seen is None else seen
    pages = 0  # not len(seen): a page reached by redirect adds two URLs, or none new
    while url:
        if _canonical(url) in seen:
            raise EngineRefused(f"{api.registry}: the {key} pages loop (back to {url})")
        if pages >= MAX_PAGES:
            raise EngineRefused(f"{api.registry}: the {key} go on past {MAX_PAGES} pages")
        response = api.request("GET", url, allow=(400,))
        if response.status_code == 400:
            if sized and "PAGINATION_NUMBER_INVALID" in response.text:
                url, sized = path, False  # the registry's own page size
                continue
            api.request("GET", url)  # raises with the registry's error text
        pages += 1
        # Both the URL asked for and where it led: a Link to a new URL that redirects back to
        # a page already read is a loop too, refused before its items are listed twice.
        asked, landed = _canonical(url), _canonical(response.url)
        if landed != asked and landed in seen:
            raise EngineRefused(f"{api.registry}: the {key} pages loop (back to {response.url})")
        seen.update((asked, landed))
        yield from _items(api, response, key)
        link = response.links.get("next", {}).get("url")
        url = urljoin(response.url, link) if link else None


def _canonical(url: str) -> str:
    """A page's URL with its query in one order: ?n=1&last=a and ?last=a&n=1 are one page."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return parts._replace(query=query, fragment="").geturl()


def _items(api: RegistryClient, response: Any, key: str) -> list[str]:
    body = api.decode(response, key)
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        if isinstance(body, dict) and items is None:
            return []  # registry:2 says "tags": null for a repository without tags
        raise EngineRefused(f"{api.registry}: the answer has no list of {key}")
    return [str(item) for item in items]


def catalog(api: RegistryClient) -> Iterator[str]:
    """Every repository name, across all pages (deleted repositories stay listed: #2314)."""
    return _pages(api, "/v2/_catalog", "repositories")


def tags(api: RegistryClient, repository: str) -> list[str]:
    """The tags of a repository, sorted ([] when it has none left): registry:2 lists them in
    storage order, which changes as tags come and go."""
    response = api.request("GET", f"/v2/{repository}/tags/list", allow=(404,))
    if response.status_code == 404:
        raise InvalidInput(f"{api.registry}: no repository {repository}")
    first = _items(api, response, "tags")
    link = response.links.get("next", {}).get("url")
    if link:  # 2.8 ignores n/last and answers with all tags at once; others may page
        seen = {_canonical(response.url)}
        first += _pages(api, urljoin(response.url, link), "tags", sized=False, seen=seen)
    return sorted(first)


def matches(name: str, pattern: str | None) -> bool:
    """A glob when the pattern has glob characters, else a substring."""
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


@dataclass(frozen=True)
class RepoTags:
    repository: str
    tags: tuple[str, ...]


def search_catalog(api: RegistryClient, term: str, *, limit: int | None = None) -> list[RepoTags]:
    """Repositories whose name matches `term` (substring or glob), each with its tags."""
    names = [name for name in catalog(api) if matches(name, term)][:limit]
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda name: _tags_or_none(api, name), names))
    return [RepoTags(repository=name, tags=tuple(t)) for name, t in zip(names, found, strict=True)]


def _tags_or_none(api: RegistryClient, name: str) -> list[str]:
    try:
        return tags(api, name)
    except InvalidInput:  # listed in the catalog, but deleted
        return []


@dataclass(frozen=True)
class ManifestLayer:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None
    digest: str


@dataclass(frozen=True)
class ManifestInfo:
    reference: str
    digest: str
    media_type: str
    layers: tuple[ManifestLayer, ...]
    total_size: int  # config + layers (compressed, as stored); for an index, its manifests
    created: str | None
    os: str | None
    architecture: str | None
    platforms: tuple[Platform, ...]  # an index's images


def manifest(api: RegistryClient, repository: str, reference: str) -> tuple[dict[str, Any], str]:
    """The manifest document and its digest.

    Raises:
        InvalidInput: no such manifest.
    """
    response = api.request(
        "GET",
        f"/v2/{repository}/manifests/{reference}",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
        allow=(404,),
        max_body=MANIFEST_MAX,
    )
    if response.status_code == 404:
        raise InvalidInput(f"{api.registry}: no manifest {repository}:{reference}")
    digest = response.headers.get("Docker-Content-Digest")
    if not digest:
        import hashlib

        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
    try:
        document: dict[str, Any] = response.json()
    except ValueError:
        raise EngineRefused(f"{api.registry}: the manifest is not JSON") from None
    return document, digest


def image_config(api: RegistryClient, repository: str, document: dict[str, Any]) -> dict[str, Any]:
    """The image config blob a manifest points at ({} for a manifest without one)."""
    config = document.get("config") or {}
    if not config.get("digest"):
        return {}
    body, _ = api.get_json(f"/v2/{repository}/blobs/{config['digest']}")
    return body if isinstance(body, dict) else {}


def show(api: RegistryClient, repository: str, reference: str) -> ManifestInfo:
    """Digest, media type, layers, total size and created time of repository:reference; for an
    index, its platforms."""
    document, digest = manifest(api, repository, reference)
    media_type = str(document.get("mediaType") or "")
    if media_type in INDEX_TYPES or "manifests" in document:
        platforms = tuple(
            Platform(
                os=str((m.get("platform") or {}).get("os", "?")),
                architecture=str((m.get("platform") or {}).get("architecture", "?")),
                variant=(m.get("platform") or {}).get("variant"),
                digest=str(m.get("digest")),
            )
            for m in document.get("manifests") or []
        )
        total = sum(int(m.get("size") or 0) for m in document.get("manifests") or [])
        return ManifestInfo(
            reference=f"{repository}:{reference}",
            digest=digest,
            media_type=media_type,
            layers=(),
            total_size=total,
            created=None,
            os=None,
            architecture=None,
            platforms=platforms,
        )
    layers = tuple(
        ManifestLayer(
            digest=str(item["digest"]),
            size=int(item.get("size") or 0),
            media_type=str(item.get("mediaType") or ""),
        )
        for item in document.get("layers") or []
    )
    config = image_config(api, repository, document)
    config_size = int((document.get("config") or {}).get("size") or 0)
    return ManifestInfo(
        reference=f"{repository}:{reference}",
        digest=digest,
        media_type=media_type,
        layers=layers,
        total_size=config_size + sum(layer.size for layer in layers),
        created=config.get("created"),
        os=config.get("os"),
        architecture=config.get("architecture"),
        platforms=(),
    )
