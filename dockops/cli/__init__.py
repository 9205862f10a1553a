"""Typer apps, one module per command group: parse, call one core function, render.

No module here imports docker, requests, rich or cryptography at import time: `dockops
--version` and `--help` must stay near Typer's own start-up cost.

Command modules keep their annotations evaluated at definition time (no `from __future__ import
annotations`): Typer reads every signature at start-up, and evaluating string annotations there
cost ~35 ms per run (measured: get_command 47 ms -> 12 ms).
"""
