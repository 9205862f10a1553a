"""A second host for the tests: a network namespace the test makes, joined to this host by a
veth pair on a /30 the test picks, so traffic goes only between the two ends.

The harness's dockerd unshares its mount namespace only: it shares this host's network
namespace, so host-network containers listen right here, and what the namespace reaches at the
host end of the pair is what another machine on the network would reach.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

# Run inside the namespace with this interpreter: "connect HOST PORT" prints connected,
# refused or the error's name; "get HOST PORT PATH CA USER PASSWORD" prints the status and
# body of an HTTPS GET verified against CA (http.client: no proxy from the environment).
_PROBE = """
import base64, http.client, json, socket, ssl, sys
what, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if what == "connect":
    try:
        socket.create_connection((host, port), timeout=5).close()
        print("connected")
    except ConnectionRefusedError:
        print("refused")
    except OSError as exc:
        print(type(exc).__name__)
else:
    path, ca, user, password = sys.argv[4:8]
    conn = http.client.HTTPSConnection(
        host, port, timeout=10, context=ssl.create_default_context(cafile=ca)
    )
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn.request("GET", path, headers={"Authorization": f"Basic {token}"})
    answer = conn.getresponse()
    print(json.dumps([answer.status, answer.read().decode()]))
"""


@dataclass(frozen=True)
class SecondHost:
    namespace: str
    host_ip: str  # this host's end of the pair: where the second host reaches us
    peer_ip: str

    def _probe(self, *args: str) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", _PROBE, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def connect(self, port: int) -> str:
        """ "connected", "refused", or the error's name, for a TCP connect to this host."""
        return self._probe("connect", self.host_ip, str(port))

    def get(self, port: int, path: str, ca: str, user: str, password: str) -> tuple[int, str]:
        """Status and body of an HTTPS GET to this host, verified against `ca`."""
        status, body = json.loads(
            self._probe("get", self.host_ip, str(port), path, ca, user, password)
        )
        return int(status), str(body)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@contextmanager
def second_host() -> Iterator[SecondHost]:
    """Make the namespace and the veth pair; remove both afterwards, whatever happened."""
    if shutil.which("ip") is None:
        _unavailable("no ip (iproute2) to make a second host")
    tag = uuid.uuid4().hex[:8]
    namespace, here, there = f"dockops-{tag}", f"dko{tag}h", f"dko{tag}n"
    # A /30 in 10.213.0.0/16, chosen at random so tests running at once do not meet.
    base = f"10.213.{random.randrange(256)}.{random.randrange(64) * 4}"
    prefix = base.rsplit(".", 1)[0]
    last = int(base.rsplit(".", 1)[1])
    host_ip, peer_ip = f"{prefix}.{last + 1}", f"{prefix}.{last + 2}"
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", namespace)
        _ip("addr", "add", f"{host_ip}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", namespace, "addr", "add", f"{peer_ip}/30", "dev", there)
        _ip("-n", namespace, "link", "set", there, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
    except RuntimeError as exc:
        _remove(namespace, here)
        _unavailable(f"cannot make a second host here: {exc}")
    try:
        yield SecondHost(namespace, host_ip, peer_ip)
    finally:
        _remove(namespace, here)


def _unavailable(reason: str) -> None:
    # CI is root on a machine that can make namespaces: a skip there would hide a broken test.
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _remove(namespace: str, link: str) -> None:
    # Deleting one end of a veth pair deletes both; the namespace goes with its last user.
    subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
