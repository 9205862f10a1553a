"""The work itself: typed functions that take a docker client, return frozen dataclasses,
raise DockopsError subclasses, and never print."""
