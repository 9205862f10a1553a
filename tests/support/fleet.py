"""A fleet on one machine for the playbook tests.

Each Ansible host is this machine (`ansible_connection=local`) pointed, through the play's
`environment`, at a disposable engine of its own: its own DOCKER_HOST, certs.d (the one that
engine's daemon reads), dockops config, docker config and cron file. So the playbooks run for
real, in parallel over several hosts, and each engine's state can be checked afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.engine import Engine, start_engine, stop_engine

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
DOCKOPS = BIN / "dockops"

# Anything of the caller's that would point a host at another engine or config; each host
# gets its own through the inventory instead.
_CALLER_ENV = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKOPS_CERTS_D",
    "DOCKOPS_CONFIG",
    "DOCKOPS_REGISTRY",
    "XDG_CONFIG_HOME",
)
_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


@dataclass(frozen=True)
class Host:
    name: str
    engine: Engine
    home: Path  # this host's own files

    @property
    def cron_file(self) -> Path:
        return self.home / "cron.d" / "dockops"

    @property
    def images_cron_file(self) -> Path:
        return self.home / "cron.d" / "dockops-prune-images"

    @property
    def certs_d(self) -> Path:
        assert self.engine.certs_d is not None
        return self.engine.certs_d

    @property
    def env(self) -> dict[str, str]:
        return {
            "DOCKER_HOST": self.engine.host,
            "DOCKOPS_CERTS_D": str(self.certs_d),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "DOCKER_CONFIG": str(self.home / "docker"),
        }

    def dockops(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run dockops as this host would."""
        return subprocess.run(
            [str(DOCKOPS), *args],
            env={**clean_env(), **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@dataclass(frozen=True)
class Run:
    code: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap.items()}


@dataclass
class Fleet:
    hosts: list[Host]
    workdir: Path
    groups: dict[str, list[str]] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def inventory(self) -> Path:
        """A YAML (here: JSON) inventory: every host local, with its own environment."""
        hosts = {
            h.name: {
                "dockops_environment": h.env,
                "dockops_certs_d": str(h.certs_d),
                "dockops_cron_file": str(h.cron_file),
                "dockops_prune_lock_file": str(h.home / "prune.lock"),
                "dockops_prune_images_cron_file": str(h.images_cron_file),
                "dockops_prune_images_lock_file": str(h.home / "prune-images.lock"),
            }
            for h in self.hosts
        }
        children: dict[str, Any] = {"docker_hosts": {"hosts": hosts}}
        for group, names in self.groups.items():
            children[group] = {"hosts": {name: {} for name in names}}
        doc = {
            "all": {
                "vars": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                    # The hosts are this machine, where we are root already and sudo may
                    # be missing; a real fleet keeps the playbooks' become: true.
                    "ansible_become": False,
                    "dockops_venv": str(BIN.parent),
                },
                "children": children,
            }
        }
        path = self.workdir / "inventory.yml"
        path.write_text(json.dumps(doc, indent=2))
        return path

    def run(self, playbook: str, extra_vars: dict[str, Any] | None = None, *args: str) -> Run:
        """ansible-playbook PLAYBOOK on the fleet; extra vars go through a 0600 file, so a
        password never shows in a process list."""
        command = [str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory())]
        if extra_vars:
            path = self.workdir / "extra-vars.json"
            path.touch(mode=0o600)
            path.write_text(json.dumps(extra_vars))
            command += ["-e", f"@{path}"]
        command += [*args, str(PLAYBOOKS / playbook)]
        done = subprocess.run(
            command,
            cwd=REPO,
            env=ansible_env(self.workdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        return Run(done.returncode, done.stdout, parse_recap(done.stdout))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _CALLER_ENV}


def ansible_env(workdir: Path) -> dict[str, str]:
    """ansible-playbook's environment: no config file of the machine's or the user's, its
    state under `workdir`, plain output."""
    home = workdir / "ansible"
    home.mkdir(exist_ok=True)
    config = home / "ansible.cfg"
    config.touch()
    return {
        **clean_env(),
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP lines: host -> {ok, changed, unreachable, failed, ...}."""
    recap: dict[str, dict[str, int]] = {}
    lines = output.splitlines()
    try:
        start = max(i for i, line in enumerate(lines) if line.startswith("PLAY RECAP"))
    except ValueError:
        return recap
    for line in lines[start + 1 :]:
        match = _RECAP_LINE.match(line.strip())
        if match:
            pairs = (item.split("=") for item in match.group(2).split())
            recap[match.group(1)] = {key: int(value) for key, value in pairs}
    return recap


def start_fleet(root: Path, names: list[str]) -> Fleet:
    """One disposable engine per host name, under `root`; stops the started ones on failure."""
    hosts: list[Host] = []
    try:
        for name in names:
            engine = start_engine(root / name)
            home = root / f"{name}-home"
            home.mkdir()
            hosts.append(Host(name, engine, home))
    except BaseException:
        stop_fleet(Fleet(hosts, root))
        raise
    return Fleet(hosts, root)


def stop_fleet(fleet: Fleet) -> None:
    for host in fleet.hosts:
        stop_engine(host.engine)
