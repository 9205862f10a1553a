"""Side-by-side benchmarks: dockops against the docker CLI and the raw Engine API."""
