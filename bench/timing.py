"""Wall-clock timing of whole commands, median of several runs taken in one go."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    label: str
    median_s: float
    runs: int


def time_command(label: str, argv: Sequence[str], runs: int, warmup: int = 2) -> Timing:
    """Run `argv` warmup + runs times (it must succeed); the median of the timed runs."""
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i >= warmup:
            samples.append(time.perf_counter() - start)
    return Timing(label, statistics.median(samples), runs)


def report(title: str, timings: Sequence[Timing], baseline: Timing) -> list[str]:
    lines = [f"## {title} (median of {baseline.runs} runs; ratio to {baseline.label})"]
    for t in timings:
        lines.append(
            f"  {t.label:<44} {t.median_s * 1000:8.1f} ms   x{t.median_s / baseline.median_s:5.2f}"
        )
    return lines
