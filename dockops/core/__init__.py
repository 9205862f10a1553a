"""The work itself, by domain: typed functions that take an Engine (dockops.engine) or a
registry client, return frozen dataclasses, raise DockopsError subclasses, and never print."""
