"""Test harness: a disposable dockerd and the offline base images (see README.md)."""

from .engine import (
    Engine,
    HarnessUnavailable,
    default_root,
    engine_at,
    engine_from_env,
    ensure_packages,
    start_engine,
    stop_engine,
)

__all__ = [
    "Engine",
    "HarnessUnavailable",
    "default_root",
    "engine_at",
    "engine_from_env",
    "ensure_base_images",
    "ensure_packages",
    "start_engine",
    "stop_engine",
]


def __getattr__(name: str) -> object:
    # images imports docker lazily anyway, but keep `import tests.harness` itself light.
    if name == "ensure_base_images":
        from .images import ensure_base_images

        return ensure_base_images
    raise AttributeError(name)
