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


@dataclass(frozen=True)
class Pair:
    """Ours and theirs, timed in alternation: each round's two runs share the moment's load."""

    ours: Timing
    theirs: Timing
    ratios: tuple[float, ...]

    @property
    def ratio(self) -> float:
        """The median of the per-round ratios (ours / theirs)."""
        return statistics.median(self.ratios)


def time_pair(
    ours: tuple[str, Sequence[str]],
    theirs: tuple[str, Sequence[str]],
    runs: int,
    warmup: int = 2,
) -> Pair:
    """Both commands `runs` times, in alternation, the order swapped every round (ABBA), so a
    busy machine (this one is shared) weighs on both alike; each must succeed."""
    walls: dict[str, list[float]] = {ours[0]: [], theirs[0]: []}
    for i in range(warmup + runs):
        for label, argv in (ours, theirs) if i % 2 == 0 else (theirs, ours):
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if i >= warmup:
                walls[label].append(time.perf_counter() - start)
    ratios = tuple(a / b for a, b in zip(walls[ours[0]], walls[theirs[0]], strict=True))
    return Pair(
        Timing(ours[0], statistics.median(walls[ours[0]]), runs),
        Timing(theirs[0], statistics.median(walls[theirs[0]]), runs),
        ratios,
    )


def pair_lines(pair: Pair, goal: float | None = None) -> list[str]:
    """Two rows (theirs, then ours with its ratio to theirs) and the verdict on `goal`."""
    theirs, ours = pair.theirs, pair.ours
    of_medians = ours.median_s / theirs.median_s
    lines = [
        f"  {theirs.label:<44} {theirs.median_s * 1000:8.1f} ms   x 1.00",
        f"  {ours.label:<44} {ours.median_s * 1000:8.1f} ms   x{of_medians:5.2f}",
    ]
    if goal is not None:
        verdict = "met" if pair.ratio <= goal else "MISSED"
        lines.append(
            f"  goal {ours.label} vs {theirs.label}: median paired ratio x{pair.ratio:.2f} "
            f"<= {goal:.2f}: {verdict}"
        )
    return lines
