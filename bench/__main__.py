"""`python -m bench [SUITE...]`: print the figures the closing notes report.

Each suite is a module of this package with `run() -> list[str]`; `make bench` runs them all
with DOCKER_HOST pointing at the disposable engine.
"""

from __future__ import annotations

import importlib
import sys

SUITES = {
    "startup": ("bench.basic", "startup"),
    "images": ("bench.basic", "images"),
    "archive": ("bench.archive", "run"),
    "prune": ("bench.prune", "run"),
    "registry": ("bench.registry", "run"),
    "registry-ls": ("bench.registry_api", "run"),
    "direct": ("bench.direct", "run"),
    "delta": ("bench.delta", "run"),
}


def main(argv: list[str]) -> int:
    for name in argv or list(SUITES):
        if name not in SUITES:
            print(f"unknown suite {name!r}; choose from {', '.join(SUITES)}", file=sys.stderr)
            return 2
        module_name, function = SUITES[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            print(f"## {name}: not built yet")
            continue
        for line in getattr(module, function)():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
