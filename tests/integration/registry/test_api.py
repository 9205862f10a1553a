"""The registry v2 API commands against a real registry:2: ls across pages, tags, search,
show (digest as the docker CLI reports it), rm by digest, retention, and gc on real storage."""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest

from tests.conftest import Cli
from tests.harness.engine import Engine
from tests.support.registry_seed import BASE, Seeder
from tests.support.registry_server import free_port, registry
from tests.support.tools import docker_cli


def test_ls_follows_every_page_and_filters(docker_env: docker.DockerClient, cli: Cli) -> None:
    # maxentries 50 < dockops's page size 1000: the registry answers 400 to n=1000, and dockops
    # asks again without n, then follows Link headers over 3 pages.
    with registry(docker_env, {"REGISTRY_CATALOG_MAXENTRIES": "50"}) as reg:
        seeder = Seeder.start(reg.address)
        names = [f"team{i % 3}/app{i:03d}" for i in range(120)]
        seeder.many(names)
        listed = cli("registry", "ls", "--registry", reg.address, "--json")
        assert listed.code == 0, listed.err
        assert json.loads(listed.out) == sorted([*names, BASE])

        globbed = cli("registry", "ls", "--registry", reg.address, "--filter", "team1/*", "--json")
        assert json.loads(globbed.out) == sorted(n for n in names if n.startswith("team1/"))
        table = cli("registry", "ls", "--registry", reg.address, "--filter", "app11")
        assert table.out.splitlines() == ["REPOSITORY", *sorted(n for n in names if "app11" in n)]

        seeder.tag("team0/app000", "v2")
        tags = cli("registry", "tags", "team0/app000", "--registry", reg.address, "--json")
        assert json.loads(tags.out) == ["v1", "v2"]
        missing = cli("registry", "tags", "nope", "--registry", reg.address)
        assert missing.code == 2 and "no repository nope" in missing.err

        found = cli("search", "app00", "--registry", reg.address, "--json")
        assert found.code == 0, found.err
        hits = json.loads(found.out)
        assert [h["repository"] for h in hits] == sorted(n for n in names if "app00" in n)
        tags_of = {h["repository"]: h["tags"] for h in hits}
        assert tags_of["team0/app000"] == ["v1", "v2"] and tags_of["team1/app001"] == ["v1"]


def test_show_matches_the_docker_cli_digest(
    docker_env: docker.DockerClient, engine: Engine, cli: Cli
) -> None:
    with registry(docker_env) as reg:
        ref = f"{reg.address}/tools/bb:1"
        docker_env.api.tag("busybox:latest", f"{reg.address}/tools/bb", "1")
        pushed = docker_cli(engine.host, "push", ref)
        assert pushed.returncode == 0, pushed.stderr
        digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
        assert digest, pushed.stdout
        shown = cli("registry", "show", "tools/bb:1", "--registry", reg.address, "--json")
        assert shown.code == 0, shown.err
        info = json.loads(shown.out)
        assert info["digest"] == digest.group(1)
        assert info["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
        image = docker_env.images.get("busybox:latest").attrs
        assert info["created"] == image["Created"]
        assert info["os"] == "linux" and info["architecture"] == image["Architecture"]
        assert len(info["layers"]) == len(image["RootFS"]["Layers"])
        assert info["total_size"] > sum(layer["size"] for layer in info["layers"]) > 0
        human = cli("registry", "show", "tools/bb:1", "--registry", reg.address)
        assert digest.group(1) in human.out and "DIGEST" in human.out
        assert cli("registry", "show", "tools/bb:9", "--registry", reg.address).code == 2


def test_rm_refuses_shared_digests_unless_forced(docker_env: docker.DockerClient, cli: Cli) -> None:
    with registry(docker_env) as reg:
        seeder = Seeder.start(reg.address)
        seeder.tag("app", "1")
        seeder.same_digest("app", "1", "stable")
        seeder.tag("app", "2")
        args = ["--registry", reg.address]
        refused = cli("registry", "rm", "app:1", *args)
        assert refused.code == 1 and "stable" in refused.err and "--force" in refused.err
        dry = cli("registry", "rm", "app:2", "--dry-run", "--json", *args)
        assert dry.code == 0 and json.loads(dry.out)["tags_removed"] == ["2"]
        assert json.loads(cli("registry", "tags", "app", "--json", *args).out) == [
            "1",
            "2",
            "stable",
        ]
        gone = cli("registry", "rm", "app:1", "--force", "--json", *args)
        assert gone.code == 0, gone.err
        assert json.loads(gone.out)["tags_removed"] == ["1", "stable"]
        assert json.loads(cli("registry", "tags", "app", "--json", *args).out) == ["2"]


def test_rm_on_a_registry_with_deletes_disabled(docker_env: docker.DockerClient, cli: Cli) -> None:
    with registry(docker_env, {"REGISTRY_STORAGE_DELETE_ENABLED": "false"}) as reg:
        Seeder.start(reg.address).tag("app", "1")
        result = cli("registry", "rm", "app:1", "--registry", reg.address)
        assert result.code == 1 and "deletes are disabled on this registry" in result.err


def test_prune_keeps_exactly_the_newest(docker_env: docker.DockerClient, cli: Cli) -> None:
    now = datetime.now(timezone.utc)
    with registry(docker_env) as reg:
        seeder = Seeder.start(reg.address)
        for age in range(6):  # v0 newest ... v5 oldest
            seeder.tag("svc", f"v{age}", created=now - timedelta(days=age * 10))
        seeder.same_digest("svc", "v1", "prod")  # v1's digest also under "prod"
        args = ["--registry", reg.address]
        plan = cli("registry", "prune", "svc", "--keep", "2", "--dry-run", "--json", *args)
        assert plan.code == 0, plan.err
        doc = json.loads(plan.out)
        # "prod" ties v1's time; kept newest two by time then name: v0, and v1 or prod, and the
        # other of the two shares the kept digest, so it is kept too.
        assert sorted(a["tag"] for a in doc["removed"]) == ["v2", "v3", "v4", "v5"]
        assert sorted(a["tag"] for a in doc["kept"]) == ["prod", "v0", "v1"]
        assert json.loads(cli("registry", "tags", "svc", "--json", *args).out) == [
            "prod",
            "v0",
            "v1",
            "v2",
            "v3",
            "v4",
            "v5",
        ]
        aged = cli("registry", "prune", "svc", "--older-than", "25d", "--json", *args)
        assert aged.code == 0, aged.err
        assert sorted(a["tag"] for a in json.loads(aged.out)["removed"]) == ["v3", "v4", "v5"]
        done = cli("registry", "prune", "svc", "--keep", "2", "--json", *args)
        assert sorted(a["tag"] for a in json.loads(done.out)["removed"]) == ["v2"]
        assert json.loads(cli("registry", "tags", "svc", "--json", *args).out) == [
            "prod",
            "v0",
            "v1",
        ]
        assert cli("registry", "prune", "svc", *args).code == 2  # neither --keep nor --older-than


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_gc_frees_blobs_and_the_registry_works_after(
    docker_env: docker.DockerClient, cli: Cli, tmp_path: Path
) -> None:
    data = tmp_path / "registry-data"
    port = free_port()
    up = cli(
        "registry", "up", "--name", "dockops-gc", "--network", "host", "--bind", "127.0.0.1",
        "--port", str(port), "--data", str(data),
    )  # fmt: skip
    assert up.code == 0, up.err
    address = f"127.0.0.1:{port}"
    box = docker_env.containers.run(
        "busybox:latest",
        ["sh", "-c", "dd if=/dev/urandom of=/blob bs=1048576 count=3"],
        network_mode="none",
        detach=True,
    )
    box.wait()
    box.commit("dockops-gc/big", "1")
    box.remove()
    try:
        assert cli("push-private", "dockops-gc/big:1", "--as", "big:1").code == 0
        assert cli("push-private", "busybox", "--as", "small:1").code == 0
        before = _folder_bytes(data)
        assert cli("registry", "rm", "big:1").code == 0
        assert _folder_bytes(data) >= before - 10_000  # a delete frees nothing by itself

        dry = cli("registry", "gc", "--name", "dockops-gc", "--dry-run", "--json")
        assert dry.code == 0, dry.err
        planned = json.loads(dry.out)
        assert planned["freed_bytes"] == 0 and planned["blobs_eligible"] >= 2
        assert planned["registry_stopped"] is False

        gc = cli("registry", "gc", "--name", "dockops-gc", "--json")
        assert gc.code == 0, gc.err
        result = json.loads(gc.out)
        assert result["registry_stopped"] is True
        assert result["freed_bytes"] >= 3 * 1048576
        assert result["bytes_before"] - result["bytes_after"] == result["freed_bytes"]
        assert before - _folder_bytes(data) >= 3 * 1048576

        # The registry takes the same image again and serves it back.
        again = cli("push-private", "dockops-gc/big:1", "--as", "big:1", "--json")
        assert again.code == 0, again.err
        docker_env.api.remove_image("dockops-gc/big:1")
        pulled = cli("pull", f"{address}/big:1")
        assert pulled.code == 0, pulled.err
    finally:
        cli("registry", "down", "--name", "dockops-gc")


def test_gc_needs_a_dockops_registry(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("registry", "gc", "--name", "dockops-nothing")
    assert result.code == 2 and "no registry named dockops-nothing" in result.err


def test_commands_need_a_registry(docker_env: docker.DockerClient, cli: Cli) -> None:
    result = cli("registry", "ls")
    assert result.code == 2 and "no private registry" in result.err
    with socket.socket() as held:  # bound, never listening: refused, and not reusable
        held.bind(("127.0.0.1", 0))
        unreachable = cli("registry", "ls", "--registry", f"127.0.0.1:{held.getsockname()[1]}")
    assert unreachable.code == 4 and "unreachable" in unreachable.err


pytestmark = pytest.mark.timeout(300)
