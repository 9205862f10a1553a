"""Engine: every request dockops makes of a Docker-compatible engine, written once.

The methods follow the Engine API's own endpoints and return its JSON documents as they are;
the core reads them. An error status comes back as Refused (Missing for 404, Conflict for
409) with the engine's words after `what`; a failed connection as EngineUnreachable. Which
transport carries the bytes is engine/__init__.py's choice, never the caller's.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from dockops.engine.errors import Missing, lost, refused
from dockops.engine.wire import Body, Lost, Params, Transport, json_lines
from dockops.errors import EngineRefused, EngineUnreachable


def _name(reference: str) -> str:
    """An image or container name as one path segment (names hold '/' and ':')."""
    return quote(reference, safe="/:@")


class Engine:
    """One engine, over one transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @property
    def address(self) -> str:
        return self.transport.address

    @property
    def api_version(self) -> str:
        return self.transport.api_version

    def close(self) -> None:
        self.transport.close()

    # -- the exchange, with errors mapped once ------------------------------------------------

    def _lost(self, exc: Lost, what: str) -> EngineUnreachable:
        return lost(exc, self.address, what)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        what: str = "",
    ) -> bytes:
        """The body of a request's answer; an error status raises (refused)."""
        try:
            answer = self.transport.call(
                method, path, params=params, json_body=json_body, headers=headers
            )
        except Lost as exc:
            raise self._lost(exc, what) from exc
        if answer.status >= 400:
            raise refused(answer.status, answer.body, what)
        return answer.body

    def json(self, method: str, path: str, *, what: str = "", **kwargs: Any) -> Any:
        body = self.call(method, path, what=what, **kwargs)
        return json.loads(body) if body.strip() else None

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        what: str = "",
    ) -> Iterator[Body]:
        """A streamed answer; an error status (before the first byte) raises here."""
        try:
            with self.transport.stream(
                method, path, params=params, json_body=json_body, headers=headers, timeout=timeout
            ) as body:
                if body.status >= 400:
                    raise refused(body.status, body.read_all(), what)
                yield body
        except Lost as exc:
            if exc.timed_out and timeout is not None:
                raise  # a stall: the caller knows whose silence it was (daemon_lines)
            raise self._lost(exc, what) from exc

    def upload(
        self, path: str, params: Params, pieces: Iterable[bytes | memoryview], what: str
    ) -> bytes:
        """POST a tar streamed from `pieces`; the answer's body."""
        try:
            answer = self.transport.upload(path, params, pieces, "application/x-tar")
        except Lost as exc:
            raise self._lost(exc, what) from exc
        if answer.status >= 400:
            raise refused(answer.status, answer.body, what)
        return answer.body

    def answers(self) -> bool:
        """True when the engine answers /_ping within 5 s: tells an engine that cut or left a
        stream silent (gone, exit 3) from one that ended it on purpose."""
        return self.transport.answers()

    # -- system -------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        if self.transport.server is None:
            self.transport.server = dict(self.json("GET", "/version"))
        return dict(self.transport.server)

    @property
    def is_podman(self) -> bool:
        """True when the engine is Podman's Docker-compatible service. Where the two differ
        (untag, insecure registries, names), the core asks this rather than guessing from
        answers. Known from connect's /_ping (its Libpod-Api-Version header); from /version's
        "Podman Engine" component only for an engine whose ping said nothing."""
        if self.transport.podman is None:
            components = self.version().get("Components") or []
            self.transport.podman = any(
                isinstance(c, dict) and str(c.get("Name", "")).startswith("Podman")
                for c in components
            )
        return self.transport.podman

    def info(self) -> dict[str, Any]:
        return dict(self.json("GET", "/info"))

    def disk_usage(self, what: str = "disk usage") -> dict[str, Any]:
        return dict(self.json("GET", "/system/df", what=what))

    def podman_disk_usage(self, what: str = "disk usage") -> dict[str, Any]:
        """Podman's own df (its libpod API), whose images carry UniqueSize: the compat one says
        SharedSize 0 for all. Only for an engine that `is_podman`."""
        return dict(self.json("GET", "/libpod/system/df", what=what))

    def events(
        self,
        since: datetime | None,
        until: datetime,
        filters: dict[str, list[str]] | None = None,
        what: str = "read the engine's events",
    ) -> list[dict[str, Any]]:
        """The engine's events from `since` (None: as far back as it keeps) to `until`, both
        inclusive, as the Engine API's JSON objects. dockerd keeps only its last 256 events, in
        memory (moby daemon/events: eventsLimit); Podman its whole events log (file or journal).

        dockerd takes unix seconds ("sec.nanos") and ends the stream at `until`. Podman 4.3
        reads fractional seconds as no time and answers 200 with nothing, so it gets RFC 3339;
        and its `until` stops the log reader when that time comes (libpod/events/logfile.go),
        at once for a past one, mid-file: so no `until`, `stream=false` (read to the end and
        close), and every event past `until` is dropped here.

        Raises:
            EngineRefused: a line of the answer that is not a JSON object.
        """
        params: Params = {"filters": json.dumps(filters)} if filters else {}
        if self.is_podman:
            start = since or datetime.fromtimestamp(0, timezone.utc)
            params.update(since=_rfc3339(start), stream="false")
        else:
            if since is not None:
                params["since"] = _unix_seconds(since)
            params["until"] = _unix_seconds(until)
        low = _nanoseconds(since) if since is not None else None
        high = _nanoseconds(until)
        with self.stream("GET", "/events", params=params, what=what) as body:
            try:
                found = list(json_lines(body.pieces))
            except ValueError as exc:
                raise EngineRefused(f"{what}: the answer is not JSON lines: {exc}") from exc
        return [
            event
            for event in found
            if (at := _event_time(event)) is None or ((low is None or at >= low) and at <= high)
        ]

    # -- images -------------------------------------------------------------------------------

    def images(
        self,
        *,
        all: bool = True,
        shared_size: bool = False,
        filters: dict[str, list[str]] | None = None,
        what: str = "list images",
    ) -> list[dict[str, Any]]:
        params: Params = {"all": int(all)}
        if shared_size:
            params["shared-size"] = 1
        if filters:
            params["filters"] = json.dumps(filters)
        return list(self.json("GET", "/images/json", params=params, what=what))

    def image(self, reference: str, what: str = "") -> dict[str, Any]:
        """The image's inspect document. Raises Missing when there is no such image."""
        return dict(self.json("GET", f"/images/{_name(reference)}/json", what=what))

    def find_image(self, reference: str) -> dict[str, Any] | None:
        """The image's inspect document, or None when there is no such image."""
        try:
            return self.image(reference)
        except Missing:
            return None

    def history(self, reference: str, what: str = "") -> list[dict[str, Any]]:
        return list(self.json("GET", f"/images/{_name(reference)}/history", what=what))

    def tag(self, reference: str, repository: str, tag: str, what: str = "") -> None:
        params = {"repo": repository, "tag": tag}
        self.call("POST", f"/images/{_name(reference)}/tag", params=params, what=what)

    def untag(
        self, reference: str, repository: str | None = None, tag: str | None = None, what: str = ""
    ) -> None:
        """Podman's own untag (libpod API): remove the name repository:tag, every name when none
        is given, and never the image. The compat API has none, and its forced DELETE removes
        the image's containers too. Podman's router takes a libpod path under any /vX prefix,
        the transport's compat version included (seen on 4.3)."""
        params = {"repo": repository, "tag": tag or "latest"} if repository else None
        self.call("POST", f"/libpod/images/{_name(reference)}/untag", params=params, what=what)

    def remove_image(
        self, reference: str, *, force: bool = False, noprune: bool = False, what: str = ""
    ) -> list[dict[str, Any]]:
        """DELETE the image; the engine's list of what it untagged and deleted."""
        params = {"force": int(force), "noprune": int(noprune)}
        return list(
            self.json("DELETE", f"/images/{_name(reference)}", params=params, what=what) or []
        )

    def commit(
        self,
        container: str,
        *,
        repository: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        author: str | None = None,
        changes: list[str] | None = None,
        pause: bool = True,
        what: str = "",
    ) -> str:
        """Commit a container; the new image's ID."""
        params: Params = {"container": container, "pause": int(pause)}
        for key, value in (
            ("repo", repository),
            ("tag", tag),
            ("comment", message),
            ("author", author),
        ):
            if value:
                params[key] = value
        if changes:
            params["changes"] = changes
        return str(self.json("POST", "/commit", params=params, json_body={}, what=what)["Id"])

    def search(
        self,
        term: str,
        limit: int,
        what: str = "",
        timeout: float | None = None,
        tls_verify: bool | None = None,
    ) -> list[dict[str, Any]]:
        """The daemon's search of its index. `timeout` bounds the wait for the answer (the
        daemon sets none on the index); past it, Lost(timed_out=True) is the caller's to word.
        `tls_verify` is podman's (False: plain HTTP allowed); docker ignores it."""
        params: Params = {"term": term, "limit": limit}
        if tls_verify is not None:
            params["tlsVerify"] = str(tls_verify).lower()
        with self.stream(
            "GET", "/images/search", params=params, timeout=timeout, what=what
        ) as body:
            return list(json.loads(body.read_all()))

    def save(self, references: list[str], what: str) -> contextlib.AbstractContextManager[Body]:
        """The tar of `references` (GET /images/get), as a stream."""
        return self.stream("GET", "/images/get", params={"names": references}, what=what)

    def load(self, pieces: Iterable[bytes | memoryview], what: str) -> list[bytes]:
        """POST /images/load; the answer's JSON lines."""
        return self.upload("/images/load", {"quiet": 1}, pieces, what).splitlines()

    def import_image(
        self, pieces: Iterable[bytes | memoryview], params: Params, what: str
    ) -> list[bytes]:
        """POST /images/create?fromSrc=- (repo, tag, changes, message in `params`)."""
        return self.upload("/images/create", {"fromSrc": "-", **params}, pieces, what).splitlines()

    # -- containers ---------------------------------------------------------------------------

    def containers(
        self,
        *,
        all: bool = True,
        filters: dict[str, list[str]] | None = None,
        what: str = "list containers",
    ) -> list[dict[str, Any]]:
        params: Params = {"all": int(all)}
        if filters:
            params["filters"] = json.dumps(filters)
        return list(self.json("GET", "/containers/json", params=params, what=what))

    def container(self, name: str, what: str = "") -> dict[str, Any]:
        """The container's inspect document. Raises Missing when there is no such container."""
        return dict(self.json("GET", f"/containers/{_name(name)}/json", what=what))

    def find_container(self, name: str) -> dict[str, Any] | None:
        try:
            return self.container(name)
        except Missing:
            return None

    def create_container(
        self, body: dict[str, Any], name: str | None = None, what: str = ""
    ) -> str:
        """POST /containers/create with the Engine API's own body; the new container's ID."""
        params = {"name": name} if name else None
        created = self.json("POST", "/containers/create", params=params, json_body=body, what=what)
        return str(created["Id"])

    def start(self, name: str, what: str = "") -> None:
        self.call("POST", f"/containers/{_name(name)}/start", what=what)

    def stop(self, name: str, timeout: int = 10, what: str = "") -> None:
        self.call("POST", f"/containers/{_name(name)}/stop", params={"t": timeout}, what=what)

    def wait(self, name: str, what: str = "") -> dict[str, Any]:
        """Block until the container stops; its exit status document."""
        return dict(self.json("POST", f"/containers/{_name(name)}/wait", what=what))

    def logs(self, name: str, what: str = "", *, tail: int | None = None) -> bytes:
        """stdout and stderr of a container without a TTY, in the order written (the last
        `tail` lines only, when given)."""
        params = {"stdout": 1, "stderr": 1, **({"tail": tail} if tail is not None else {})}
        return _demultiplex(
            self.call("GET", f"/containers/{_name(name)}/logs", params=params, what=what)
        )

    def remove_container(
        self, name: str, *, force: bool = False, volumes: bool = False, what: str = ""
    ) -> None:
        params = {"force": int(force), "v": int(volumes)}
        self.call("DELETE", f"/containers/{_name(name)}", params=params, what=what)

    def rename(self, name: str, new_name: str, what: str = "") -> None:
        self.call("POST", f"/containers/{_name(name)}/rename", params={"name": new_name}, what=what)

    def update_container(self, name: str, body: dict[str, Any], what: str = "") -> None:
        self.call("POST", f"/containers/{_name(name)}/update", json_body=body, what=what)

    def export(self, name: str, what: str) -> contextlib.AbstractContextManager[Body]:
        """The container's filesystem as a tar stream."""
        return self.stream("GET", f"/containers/{_name(name)}/export", what=what)

    # -- networks and volumes -----------------------------------------------------------------

    def networks(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        params = {"filters": json.dumps({"name": names})} if names else None
        return list(self.json("GET", "/networks", params=params))

    def network(self, name: str, what: str = "") -> dict[str, Any]:
        return dict(self.json("GET", f"/networks/{_name(name)}", what=what))

    def create_network(self, body: dict[str, Any], what: str = "") -> str:
        return str(self.json("POST", "/networks/create", json_body=body, what=what)["Id"])

    def remove_network(self, name: str, what: str = "") -> None:
        self.call("DELETE", f"/networks/{_name(name)}", what=what)

    def connect_network(
        self, network: str, container: str, aliases: list[str] | None = None, what: str = ""
    ) -> None:
        body: dict[str, Any] = {"Container": container}
        if aliases:
            body["EndpointConfig"] = {"Aliases": aliases}
        self.call("POST", f"/networks/{_name(network)}/connect", json_body=body, what=what)

    def volumes(self) -> list[dict[str, Any]]:
        return list((self.json("GET", "/volumes") or {}).get("Volumes") or [])

    def create_volume(
        self, name: str, labels: dict[str, str] | None = None, what: str = ""
    ) -> None:
        body = {"Name": name, "Labels": labels or {}}
        self.call("POST", "/volumes/create", json_body=body, what=what)

    def remove_volume(self, name: str, what: str = "") -> None:
        self.call("DELETE", f"/volumes/{_name(name)}", what=what)


def _demultiplex(raw: bytes) -> bytes:
    """The payload of a multiplexed log stream (8-byte frame headers: stream, 0, 0, 0, size);
    a TTY container's log, which has no frames, is passed as it is."""
    if len(raw) < 8 or raw[0] not in (0, 1, 2) or raw[1:4] != b"\0\0\0":
        return raw
    out, position = bytearray(), 0
    while position + 8 <= len(raw):
        size = int.from_bytes(raw[position + 4 : position + 8], "big")
        out += raw[position + 8 : position + 8 + size]
        position += 8 + size
    return bytes(out)


def _nanoseconds(when: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, without a float's rounding."""
    delta = when - datetime.fromtimestamp(0, timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _unix_seconds(when: datetime) -> str:
    """dockerd's since/until: seconds and nanoseconds since the epoch, "1700000000.123456000"."""
    seconds, nanos = divmod(_nanoseconds(when), 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


def _rfc3339(when: datetime) -> str:  # Podman's since
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event_time(event: dict[str, Any]) -> int | None:
    """An event's time in nanoseconds (timeNano, else time in seconds); None when it has none."""
    for key, scale in (("timeNano", 1), ("time", 1_000_000_000)):
        value = event.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value * scale
    return None
