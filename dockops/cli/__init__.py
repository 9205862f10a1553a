"""Typer apps, one module per command group: parse, call one core function, render.

No module here imports docker, requests, rich or cryptography at import time: `dockops
--version` and `--help` must stay near Typer's own start-up cost.
"""
