from dockops.cli.main import run

run()
