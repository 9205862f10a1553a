"""The fleet playbooks, run for real by ansible-playbook over three hosts, each with its own
disposable engine (tests/support/fleet.py): cron entries, the secure registry and its CA
on every engine, push-private from a build host, and the install into a virtualenv. Every
playbook is run twice: the second run must report changed=0 on every host."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from tests.harness.engine import HarnessUnavailable, ensure_packages
from tests.harness.images import ensure_base_images
from tests.support.fleet import (
    ANSIBLE_PLAYBOOK,
    DOCKOPS,
    PLAYBOOKS,
    REPO,
    Fleet,
    Run,
    ansible_env,
    start_fleet,
    stop_fleet,
)
from tests.support.imagefactory import FakeImage, ago, load_images
from tests.support.registry_server import free_port

NAMES = ["h1", "h2", "h3"]  # h1 runs the registry, h2 builds and pushes
USER = "fleet"
EXAMPLE_INVENTORY = "playbooks/inventory/example.yml"


def _ok(run: Run) -> None:
    assert run.code == 0, run.output[-4000:]
    assert set(run.recap) and all(c["failed"] == 0 for c in run.recap.values()), run.output


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    try:
        ensure_packages()
        fleet = start_fleet(tmp_path_factory.mktemp("fleet"), NAMES)
    except HarnessUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the disposable Docker engines: {exc}", pytrace=False)
        pytest.skip(f"no disposable Docker engines here: {exc}")
    fleet.groups = {"registry": ["h1"], "build": ["h2"]}
    try:
        for host in fleet.hosts:
            ensure_base_images(host.engine.host)
        yield fleet
    finally:
        stop_fleet(fleet)


def test_every_playbook_passes_syntax_check(tmp_path: Path) -> None:
    playbooks = sorted(str(p) for p in PLAYBOOKS.glob("*.yml"))
    assert len(playbooks) == 4
    done = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "--syntax-check", "-i", EXAMPLE_INVENTORY, *playbooks],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("playbook: ") == 4


def _job(host_cron_file: Path) -> str:
    return host_cron_file.read_text().splitlines()[-1]


def test_cron_playbook_installs_each_hosts_entry_once(fleet: Fleet) -> None:
    settings = {"dockops_prune_schedule": "5 4 * * *", "dockops_prune_older_than": "36h"}
    first = fleet.run("cron.yml", settings)
    _ok(first)
    assert first.changed() == dict.fromkeys(NAMES, 1)
    dockops = str(DOCKOPS.resolve())
    for host in fleet.hosts:
        text = host.cron_file.read_text()
        assert text.startswith("# Managed by dockops")
        # Each entry follows its own host's engine and docker config, nobody else's.
        assert f"DOCKER_HOST={host.engine.host}\n" in text
        assert f"DOCKER_CONFIG={host.home / 'docker'}\n" in text
        assert _job(host.cron_file) == (
            f"5 4 * * * root {dockops} prune-dangling --quiet --older-than 36h "
            f"--lock-file {host.home / 'prune.lock'} 2>&1 | logger -t dockops"
        )
        assert host.cron_file.stat().st_mode & 0o777 == 0o644

    again = fleet.run("cron.yml", settings)
    _ok(again)
    assert again.changed() == dict.fromkeys(NAMES, 0)

    # The job as cron would run it, minus syslog: it prunes its own engine only.
    h3 = fleet.host("h3")
    others = {h.name: _image_ids(h.engine.host) for h in fleet.hosts if h.name != "h3"}
    with _client(h3.engine.host) as client:
        old, new = load_images(
            client,
            [FakeImage(seed="cron-old"), FakeImage(seed="cron-new", created=ago(minutes=5))],
        )
        env = dict(line.split("=", 1) for line in h3.cron_file.read_text().splitlines()[1:-1])
        job = _job(h3.cron_file).split(" ", 6)[6].removesuffix(" 2>&1 | logger -t dockops")
        ran = subprocess.run(
            ["/bin/sh", "-c", job],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0 and ran.stdout == "", ran.stderr
        left = {i.id for i in client.images.list(all=True)}
        assert old not in left and new in left  # --older-than 36h keeps the fresh one
        client.images.remove(new)
    assert {h: _image_ids(fleet.host(h).engine.host) for h in others} == others

    changed = fleet.run("cron.yml", {**settings, "dockops_prune_older_than": "7d"})
    _ok(changed)
    assert changed.changed() == dict.fromkeys(NAMES, 1)
    assert all("--older-than 7d " in _job(h.cron_file) for h in fleet.hosts)

    removed = fleet.run("cron.yml", {"dockops_cron_state": "absent"})
    _ok(removed)
    assert removed.changed() == dict.fromkeys(NAMES, 1)
    assert not any(h.cron_file.exists() for h in fleet.hosts)


IMAGES_SETTINGS = {
    "dockops_cron_jobs": ["prune-images"],
    "dockops_prune_images_references": ["team/*", "ci/*:pr-*"],
    "dockops_prune_images_keep_last": 0,
    "dockops_prune_images_unused_for": "14d",
    "dockops_prune_images_max_disk": "80%",
    "dockops_prune_images_keep": ["team/base:*"],
    "dockops_prune_images_keep_labels": ["keep"],
    "dockops_prune_images_metrics_file": "/var/lib/node_exporter/textfile/dockops-images.prom",
}


def test_cron_playbook_installs_prune_images_beside_prune_dangling(fleet: Fleet) -> None:
    dangling = {h.name: h.cron_file.exists() for h in fleet.hosts}
    first = fleet.run("cron.yml", IMAGES_SETTINGS)
    _ok(first)
    assert first.changed() == dict.fromkeys(NAMES, 1)
    dockops = str(DOCKOPS.resolve())
    for host in fleet.hosts:
        text = host.images_cron_file.read_text()
        assert text.startswith("# Managed by dockops: ") and "prune-images" in text.split("\n")[0]
        assert f"DOCKER_HOST={host.engine.host}\n" in text
        assert _job(host.images_cron_file) == (
            f"41 * * * * root {dockops} prune-images --quiet --reference 'team/*' "
            "--reference 'ci/*:pr-*' --keep-last 0 --unused-for 14d --max-disk 80\\% "
            "--keep 'team/base:*' --keep-label keep "
            f"--lock-file {host.home / 'prune-images.lock'} "
            "--metrics-file /var/lib/node_exporter/textfile/dockops-images.prom "
            "2>&1 | logger -t dockops"
        )
        assert host.images_cron_file.stat().st_mode & 0o777 == 0o644
    # Only the job named: prune-dangling's entry is as it was.
    assert {h.name: h.cron_file.exists() for h in fleet.hosts} == dangling

    again = fleet.run("cron.yml", IMAGES_SETTINGS)
    _ok(again)
    assert again.changed() == dict.fromkeys(NAMES, 0)

    # Both at once, named as -e would give them: prune-images' entry is already right.
    both = {**IMAGES_SETTINGS, "dockops_cron_jobs": "prune-dangling, prune-images"}
    installed = fleet.run("cron.yml", both)
    _ok(installed)
    assert installed.changed() == {h: 0 if dangling[h] else 1 for h in NAMES}
    assert all(h.cron_file.exists() and h.images_cron_file.exists() for h in fleet.hosts)
    assert all(" prune-dangling --quiet " in _job(h.cron_file) for h in fleet.hosts)
    assert fleet.run("cron.yml", both).changed() == dict.fromkeys(NAMES, 0)

    # One job's state alone.
    removed = fleet.run("cron.yml", {**both, "dockops_prune_images_state": "absent"})
    _ok(removed)
    assert removed.changed() == dict.fromkeys(NAMES, 1)
    assert not any(h.images_cron_file.exists() for h in fleet.hosts)
    assert all(h.cron_file.exists() for h in fleet.hosts)

    gone = fleet.run("cron.yml", {**both, "dockops_cron_state": "absent"})
    _ok(gone)
    assert gone.changed() == dict.fromkeys(NAMES, 1)
    assert not any(h.cron_file.exists() or h.images_cron_file.exists() for h in fleet.hosts)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"dockops_cron_jobs": "prune-imagez"}, "dockops_cron_jobs names prune-imagez"),
        ({"dockops_cron_jobs": ["prune-images"]}, "prune-images needs at least one of"),
    ],
    ids=["unknown-job", "no-rule"],
)
def test_cron_playbook_refuses_a_job_it_cannot_install(
    fleet: Fleet, settings: dict[str, object], says: str
) -> None:
    run = fleet.run("cron.yml", settings, "--limit", "h1")
    assert run.code != 0 and run.recap["h1"]["failed"] == 1
    assert says in run.output
    assert not fleet.host("h1").images_cron_file.exists()


def _client(host: str) -> closing[docker.DockerClient]:
    return closing(docker.DockerClient(base_url=host, version="auto", timeout=120))


def _image_ids(host: str) -> set[str]:
    with _client(host) as client:
        return {i.id for i in client.images.list(all=True)}


@dataclass(frozen=True)
class Registry:
    address: str
    password: str
    settings: dict[str, object]
    first: Run
    second: Run


@pytest.fixture(scope="module")
def registry(fleet: Fleet) -> Iterator[Registry]:
    port = free_port()
    password = secrets.token_urlsafe()
    settings: dict[str, object] = {
        "dockops_registry_name": "fleetreg",
        "dockops_registry_host": "127.0.0.1",
        "dockops_registry_port": port,
        "dockops_registry_network": "host",
        "dockops_registry_bind": "127.0.0.1",
        "dockops_registry_backend_port": free_port(),
        "dockops_registry_user": USER,
        "dockops_registry_password": password,
    }
    try:
        first = fleet.run("registry.yml", settings)
        second = fleet.run("registry.yml", settings)
        yield Registry(f"127.0.0.1:{port}", password, settings, first, second)
    finally:
        fleet.host("h1").dockops("registry", "down", "--name", "fleetreg", "--purge")


def test_registry_playbook_deploys_once_and_every_engine_trusts_it(
    fleet: Fleet, registry: Registry
) -> None:
    _ok(registry.first)
    # h1: registry up, registry secure, and its own certs.d; the others: their certs.d.
    assert registry.first.changed() == {"h1": 4, "h2": 2, "h3": 2}
    assert registry.password not in registry.first.output
    _ok(registry.second)
    assert registry.second.changed() == dict.fromkeys(NAMES, 0)

    h1 = fleet.host("h1")
    ca = h1.home / "config" / "dockops" / "registries" / "fleetreg" / "ca.crt"
    for host in fleet.hosts:
        installed = host.certs_d / registry.address / "ca.crt"
        assert installed.read_bytes() == ca.read_bytes(), host.name
        assert installed.stat().st_mode & 0o777 == 0o644

    url = f"https://{registry.address}/v2/"
    assert requests.get(url, verify=str(ca), timeout=10).status_code == 401
    answer = requests.get(url, verify=str(ca), timeout=10, auth=(USER, registry.password))
    assert answer.status_code == 200

    status = h1.dockops("registry", "status", "--name", "fleetreg", "--json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["tls"] is True and state["trusted"] is True
    assert state["frontend"]["restart"] == "always"


def _commit(host: str, ref: str, content: str) -> str:
    with _client(host) as client:
        box = client.containers.run(
            "busybox:latest", ["sh", "-c", f"echo {content} > /built"], network_mode="none",
            detach=True,
        )  # fmt: skip
        box.wait()
        repository, tag = ref.rsplit(":", 1)
        image = box.commit(repository=repository, tag=tag)
        box.remove()
        return str(image.id)


def test_push_playbook_pushes_from_the_build_host(fleet: Fleet, registry: Registry) -> None:
    _ok(registry.first)
    h2, h3 = fleet.host("h2"), fleet.host("h3")
    image_id = _commit(h2.engine.host, "fleet/app:1", "one")
    settings = {**registry.settings, "dockops_image": "fleet/app:1"}

    first = fleet.run("push.yml", settings)
    _ok(first)
    assert first.changed() == {"h2": 2}  # the login, the push
    assert registry.password not in first.output
    ref = f"{registry.address}/fleet/app:1"
    assert f'"msg": "{ref} sha256:' in first.output
    auths = json.loads((h2.home / "docker" / "config.json").read_text())["auths"]
    assert registry.address in auths

    again = fleet.run("push.yml", settings)
    _ok(again)
    assert again.changed() == {"h2": 0}

    # Another engine pulls it through the TLS frontend: its daemon trusts the CA the
    # registry playbook put in its certs.d, and gets exactly the image h2 built.
    with _client(h3.engine.host) as client:
        pulled = client.images.pull(
            ref, auth_config={"username": USER, "password": registry.password}
        )
        assert pulled.id == image_id
        client.images.remove(ref)

    # A rebuilt image under the same tag is a change in the registry; the login still works.
    _commit(h2.engine.host, "fleet/app:1", "two")
    rebuilt = fleet.run("push.yml", settings)
    _ok(rebuilt)
    assert rebuilt.changed() == {"h2": 1}


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dockops's wheel, built now and offline, beside its dependencies' wheels (fetched by
    `make install` into .build/wheelhouse), for an install with --no-index, as an offline
    fleet would do. Nothing here reaches beyond this machine."""
    fetched = REPO / ".build" / "wheelhouse"
    dependencies = [w for w in fetched.glob("*.whl") if not w.name.startswith("dockops-")]
    if not dependencies:
        reason = f"no dependency wheels in {fetched}: run `make install`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("wheelhouse")
    for wheel in dependencies:
        shutil.copy2(wheel, out)
    done = subprocess.run(
        [
            str(DOCKOPS.parent / "pip"), "wheel", "-q", "--no-input", "--no-index", "--no-deps",
            "--no-build-isolation", "-w", str(out), str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_install_playbook_installs_the_wheel_into_a_virtualenv(
    fleet: Fleet, wheelhouse: Path, tmp_path: Path
) -> None:
    wheel = next(wheelhouse.glob("dockops-*.whl"))
    settings = {
        "dockops_wheel": str(wheel),
        "dockops_venv": str(tmp_path / "venv"),
        "dockops_wheel_dir": str(tmp_path / "wheels"),
        "dockops_link": str(tmp_path / "bin" / "dockops"),
        "dockops_pip_extra_args": f"--no-index --find-links {wheelhouse}",
    }
    (tmp_path / "bin").mkdir()
    first = fleet.run("install.yml", settings, "--limit", "h1")
    _ok(first)
    assert first.changed() == {"h1": 4}  # wheel folder, wheel, venv + pip, link
    version = subprocess.run(
        [str(tmp_path / "bin" / "dockops"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0 and wheel.name.split("-")[1] in version.stdout

    again = fleet.run("install.yml", settings, "--limit", "h1")
    _ok(again)
    assert again.changed() == {"h1": 0}
