"""bench/results.md: every suite's figures as tables, with the environment they were taken in.

The suites print aligned text lines (`## title`, then `  label   12.3 ms   x1.05 ...`); those
lines stay what a terminal shows, and are turned into tables here: one per `##` section, a row
per measured line (time, ratio to the section's baseline, throughput and peak RSS where the
suite measures them), and the section's other lines (goals, verdicts) under it.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone

_ROW = re.compile(
    r"^\s+(?P<label>\S.*?)\s+(?P<time>\d+(?:\.\d+)?) (?P<unit>ms|s)\s+x\s*(?P<ratio>\d+(?:\.\d+)?)"
    r"(?P<rest>.*)$"
)
_RSS = re.compile(r"peak RSS\s+(?P<rss>\d+(?:\.\d+)?) MiB")
_RATE = re.compile(r"(?P<rate>\d+(?:\.\d+)?) MB/s")


@dataclass
class Row:
    label: str
    time: str
    ratio: str
    rate: str = ""
    rss: str = ""
    notes: str = ""


@dataclass
class Section:
    suite: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse(suite: str, lines: list[str]) -> list[Section]:
    """Group a suite's printed lines into sections of rows and notes."""
    sections: list[Section] = []
    for line in lines:
        if line.startswith("## "):
            sections.append(Section(suite, line[3:].strip()))
            continue
        if not sections:
            sections.append(Section(suite, suite))
        section = sections[-1]
        match = _ROW.match(line)
        if match is None:
            if line.strip():
                section.notes.append(line.strip())
            continue
        rest = match["rest"]
        rss = _RSS.search(rest)
        rate = _RATE.search(rest)
        for found in (rss, rate):
            if found:
                rest = rest.replace(found.group(0), " ")
        section.rows.append(
            Row(
                label=match["label"].strip(),
                time=f"{match['time']} {match['unit']}",
                ratio=f"x{match['ratio']}",
                rate=f"{rate['rate']} MB/s" if rate else "",
                rss=f"{rss['rss']} MiB" if rss else "",
                notes=" ".join(rest.split()),
            )
        )
    return sections


_COLUMNS = (
    ("measurement", "label"),
    ("time (median)", "time"),
    ("ratio", "ratio"),
    ("throughput", "rate"),
    ("peak RSS", "rss"),
    ("notes", "notes"),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(section: Section) -> list[str]:
    """A markdown table of the section's rows; columns no row fills are left out."""
    columns = [(h, a) for h, a in _COLUMNS if any(getattr(r, a) for r in section.rows)]
    out = [
        "| " + " | ".join(h for h, _ in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in section.rows:
        out.append("| " + " | ".join(_cell(getattr(row, a)) for _, a in columns) + " |")
    return out


def _first(path: str, pattern: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                found = re.match(pattern, line)
                if found:
                    return found.group(1).strip().strip('"')
    except OSError:
        pass
    return "unknown"


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def environment() -> list[tuple[str, str]]:
    """Where the figures were taken: machine, system, Python, engine, CLI, knobs."""
    from dockops import __version__

    engine = "not reached"
    try:
        import docker

        client = docker.from_env(version="auto", timeout=20)
        version = client.version()
        info = client.info()
        engine = (
            f"{version.get('Version')} (API {version.get('ApiVersion')}, "
            f"{info.get('Driver')}, {os.environ.get('DOCKER_HOST', 'default socket')})"
        )
        client.close()
    except Exception as exc:  # the table is still worth writing without it
        engine = f"not reached ({type(exc).__name__})"
    docker_cli = shutil.which("docker")
    cli = _run([docker_cli, "version", "--format", "{{.Client.Version}}"]) if docker_cli else "-"
    podman = _podman()
    memory_kib = _first("/proc/meminfo", r"MemTotal:\s+(\d+)")
    knobs = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("BENCH_"))
    model = _first("/proc/cpuinfo", r"model name\s*:\s*(.*)")
    return [
        ("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{os.cpu_count()} x {model}"),
        (
            "memory",
            f"{int(memory_kib) / 1024 / 1024:.1f} GiB" if memory_kib.isdigit() else "unknown",
        ),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("system", _first("/etc/os-release", r"PRETTY_NAME=(.*)")),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("dockops", __version__),
        ("Docker engine", engine),
        ("docker CLI", cli),
        *podman,
        ("settings", ", ".join(knobs) or "defaults (no BENCH_* variable set)"),
    ]


def _podman() -> list[tuple[str, str]]:
    """The Podman rows, when a Podman service was measured (the *-podman suites)."""
    from bench import podman

    found = podman.find()
    if isinstance(found, str):
        return []
    try:
        service = podman.describe(found)
    except Exception as exc:  # the table is still worth writing without it
        service = f"not reached ({type(exc).__name__})"
    cli = _run([found.cli, "--version"])
    return [("Podman service", service), ("podman CLI", cli.removeprefix("podman version "))]


def render(
    sections: list[Section],
    env: list[tuple[str, str]],
    timings: dict[str, float],
    failures: dict[str, str],
) -> str:
    """The whole results.md."""
    out = [
        "# dockops benchmarks",
        "",
        "Written by `make bench` (`python -m bench`, every suite in one run, on the disposable",
        "engine). Each table compares dockops with the docker CLI, the raw Engine API (curl on",
        "the socket) or a curl loop, as the suite says; the *-podman suites do the same on the",
        "harness's Podman service, against the podman CLI. Ratios are to the first row unless",
        "the title names another baseline. Do not edit by hand: run `make bench` again.",
        "",
        "## Environment",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {_cell(value)} |" for name, value in env),
        f"| suites | {', '.join(f'{s} ({t:.0f} s)' for s, t in timings.items())} |",
        "",
    ]
    suite = None
    for section in sections:
        if section.suite != suite:
            suite = section.suite
            out += [f"## {suite}", ""]
        out += [f"### {section.title}", ""]
        if section.rows:
            out += [*table(section), ""]
        if section.notes:
            out += [*(f"- {_cell(note)}" for note in section.notes), ""]
    if failures:
        out += ["## Failed suites", ""]
        out += [f"- {name}: {_cell(error)}" for name, error in failures.items()]
        out.append("")
    return "\n".join(out)
