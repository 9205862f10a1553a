"""`python -m bench [SUITE...]`: run the side-by-side benchmarks and report them.

Each suite is a module of this package with `run() -> list[str]` (or another function named in
SUITES); a module with a `run()` that SUITES does not list yet is found and run too, under its
own name, so a suite added for another feature is never left out of `make bench`, which runs
them all with DOCKER_HOST pointing at the disposable engine (and, for the *-podman suites, the
harness's Podman service in DOCKOPS_TEST_PODMAN_HOST: bench/podman.py). Every suite's lines are
printed as they come. A run of every suite (no arguments) also writes bench/results.md: a table
per suite, the environment, and any suite that failed; a run of some suites writes
bench/results/partial.md (git-ignored), so it never replaces the full table.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from pathlib import Path

SUITES = {
    "startup": ("bench.basic", "startup"),
    "images": ("bench.basic", "images"),
    "archive": ("bench.archive", "run"),
    "prune": ("bench.prune", "run"),
    "archive-podman": ("bench.archive_podman", "run"),
    "prune-podman": ("bench.prune_podman", "run"),
    "retention-plan": ("bench.retention", "plan"),
    "retention-remove": ("bench.retention", "remove"),
    "registry": ("bench.registry", "run"),
    "registry-ls": ("bench.registry_api", "run"),
    "direct": ("bench.direct", "run"),
    "delta": ("bench.delta", "run"),
    "transport": ("bench.transport", "run"),
}
# Modules of this package that are helpers, not suites.
_NOT_SUITES = {"__main__", "results", "timing", "minimal_typer", "podman"}
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"
PARTIAL = HERE / "results" / "partial.md"


def _run_suite(name: str) -> list[str]:
    module_name, function = SUITES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return [f"## {name}: not built yet"]
    lines: list[str] = getattr(module, function)()
    return lines


def discover(folder: Path | None = None, package: str = "bench") -> dict[str, tuple[str, str]]:
    """SUITES, then every other module of `package` (in `folder`, default this one) with a
    `run()`, named after the module."""
    import pkgutil

    found = dict(SUITES)
    listed = {module for module, _ in SUITES.values()}
    for info in sorted(pkgutil.iter_modules([str(folder or HERE)]), key=lambda i: i.name):
        module_name = f"{package}.{info.name}"
        if info.name in _NOT_SUITES or module_name in listed:
            continue
        if callable(getattr(importlib.import_module(module_name), "run", None)):
            found[info.name.replace("_", "-")] = (module_name, "run")
    return found


def main(argv: list[str]) -> int:
    if not os.environ.get("DOCKER_HOST"):
        # Never the machine's own engine (environment() would ask /var/run/docker.sock).
        print("bench: DOCKER_HOST names no engine; run `make bench`", file=sys.stderr)
        return 2
    SUITES.update(discover())
    unknown = [name for name in argv if name not in SUITES]
    if unknown:
        print(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    from bench import results

    names = argv or list(SUITES)
    sections: list[results.Section] = []
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    for name in names:
        started = time.monotonic()
        try:
            lines = _run_suite(name)
        except Exception as exc:  # one broken suite must not cost the others' figures
            traceback.print_exc()
            failures[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            lines = []
        timings[name] = time.monotonic() - started
        for line in lines:
            print(line, flush=True)
        sections += results.parse(name, lines)

    from dockops.atomic import write_atomic

    target = RESULTS if not argv else PARTIAL
    text = results.render(sections, results.environment(), timings, failures)
    write_atomic(target, text.encode(), 0o644)  # a reader never sees half a table
    print(f"wrote {target.relative_to(HERE.parent)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
