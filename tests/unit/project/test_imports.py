"""The shape of the package: no import cycle, no module past the size a reader takes in whole.

The layers themselves are import-linter's contracts ([tool.importlinter] in pyproject.toml,
run by `make lint`); a cycle it cannot express, so it is found here on grimp's graph, which
holds every import statement, the function-level (lazy) ones included.
"""

from __future__ import annotations

from pathlib import Path

import grimp

import dockops

PACKAGE = Path(dockops.__file__).parent
MAX_LINES = 450


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("dockops", cache_dir=None)
    cycles = set()
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.add(" -> ".join((module, *back)))
    assert not cycles, "import cycles (break each one):\n" + "\n".join(sorted(cycles))


def test_no_module_is_over_450_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text().splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    too_long = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them by what they do): {too_long}"
