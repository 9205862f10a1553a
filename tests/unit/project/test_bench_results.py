"""`python -m bench`: the suites' lines become bench/results.md tables (pure text work; the
suites themselves need an engine and run with `make bench`, never in `make test`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import results

REPO = Path(__file__).resolve().parents[3]

# One line of each shape the suites print (bench/timing.py, archive.py, registry.py, ...).
ARCHIVE = [
    "## save (median of 3 runs; 629 MB; ratio to raw API: curl /images/get)",
    "  raw API: curl /images/get            1.52 s  x 1.00     414 MB/s  peak RSS    5.1 MiB",
    "  dockops save -o                      1.61 s  x 1.06     391 MB/s  peak RSS   41.0 MiB",
    "  dockops save vs raw, per round: x1.05, x1.08, x1.04",
    "  goal dockops save vs raw: median paired ratio x1.05 <= 1.10 (ratio of medians x1.06),"
    " 41.0 <= 80 MiB: met",
    "  dockops save vs docker save -o: x0.97",
]
STARTUP = [
    "## start-up (median of 15 runs; ratio to python3 -c pass)",
    "  python3 -c pass                                  21.1 ms   x 1.00",
    "  dockops --version                               148.0 ms   x 7.03",
]
REGISTRY = [
    "## registry push (median of 3 runs; 336 MB image; fresh registry each)",
    "  docker tag && docker push       4.10 s  x 1.00   runs: 4.10, 4.20, 4.00",
    "  dockops push-private            4.30 s  x 1.05   runs: 4.30, 4.40, 4.20",
    "## registry ls (1200 repositories, default page size; median of 7 runs)",
    "  curl loop                 180.2 ms  x 1.00  13 catalog requests",
    "  dockops registry ls | x   220.0 ms  x 1.22  2 catalog requests",
]


def test_rows_keep_time_ratio_throughput_rss_and_notes() -> None:
    [save] = results.parse("archive", ARCHIVE)
    assert save.title.startswith("save (median of 3 runs")
    assert [(r.label, r.time, r.ratio, r.rate, r.rss, r.notes) for r in save.rows] == [
        ("raw API: curl /images/get", "1.52 s", "x1.00", "414 MB/s", "5.1 MiB", ""),
        ("dockops save -o", "1.61 s", "x1.06", "391 MB/s", "41.0 MiB", ""),
    ]
    assert save.notes == [
        "dockops save vs raw, per round: x1.05, x1.08, x1.04",
        "goal dockops save vs raw: median paired ratio x1.05 <= 1.10 (ratio of medians x1.06),"
        " 41.0 <= 80 MiB: met",
        "dockops save vs docker save -o: x0.97",
    ]
    push, listing = results.parse("registry", REGISTRY)
    assert push.rows[1].notes == "runs: 4.30, 4.40, 4.20"
    assert listing.rows[1].label == "dockops registry ls | x"
    assert listing.rows[0].notes == "13 catalog requests"


def test_tables_leave_out_empty_columns_and_escape_pipes() -> None:
    [startup] = results.parse("startup", STARTUP)
    assert results.table(startup) == [
        "| measurement | time (median) | ratio |",
        "|---|---|---|",
        "| python3 -c pass | 21.1 ms | x1.00 |",
        "| dockops --version | 148.0 ms | x7.03 |",
    ]
    _, listing = results.parse("registry", REGISTRY)
    assert "| dockops registry ls \\| x | 220.0 ms | x1.22 | 2 catalog requests |" in (
        results.table(listing)
    )


def fine() -> list[str]:
    return STARTUP


def broken() -> list[str]:
    raise RuntimeError("the engine went away")


@pytest.fixture
def fake_suites(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    here = "tests.unit.project.test_bench_results"
    monkeypatch.setattr(bench_main, "SUITES", {"fine": (here, "fine"), "broken": (here, "broken")})
    monkeypatch.setattr(bench_main, "RESULTS", tmp_path / "results.md")
    monkeypatch.setattr(bench_main, "PARTIAL", tmp_path / "results" / "partial.md")
    monkeypatch.setattr(bench_main, "HERE", tmp_path)
    monkeypatch.setattr(results, "environment", lambda: [("CPU", "2 x test")])
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    return tmp_path


def test_without_docker_host_nothing_runs_and_no_table_is_written(
    fake_suites: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Else environment() would ask the machine's own engine at /var/run/docker.sock.
    monkeypatch.delenv("DOCKER_HOST")
    assert bench_main.main([]) == 2
    assert "run `make bench`" in capsys.readouterr().err
    assert not (fake_suites / "results.md").exists()


def test_a_full_run_writes_results_md_and_names_a_failed_suite(
    fake_suites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_main.main([]) == 1  # a suite failed: the run says so
    text = (fake_suites / "results.md").read_text()
    assert "| CPU | 2 x test |" in text
    assert "| suites | fine (0 s), broken (0 s) |" in text
    assert "## fine\n\n### start-up (median of 15 runs; ratio to python3 -c pass)" in text
    assert "| dockops --version | 148.0 ms | x7.03 |" in text
    assert "## Failed suites\n\n- broken: RuntimeError: the engine went away" in text
    assert "dockops --version" in capsys.readouterr().out  # lines still printed as they come
    assert not (fake_suites / "results").exists()


def test_a_partial_run_never_replaces_the_full_table(fake_suites: Path) -> None:
    assert bench_main.main(["fine"]) == 0
    assert not (fake_suites / "results.md").exists()
    assert "x7.03" in (fake_suites / "results" / "partial.md").read_text()
    assert bench_main.main(["nope"]) == 2


def test_a_suite_module_no_one_listed_is_found_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "benchprobe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "new_suite.py").write_text(
        "def run():\n    return ['## new', '  a   1.0 s  x1.00']\n"
    )
    (package / "helper.py").write_text("X = 1\n")
    (package / "timing.py").write_text("def run():\n    raise AssertionError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = bench_main.discover(package, "benchprobe")
    assert found["new-suite"] == ("benchprobe.new_suite", "run")
    assert "helper" not in found and "timing" not in found
    listed = list(bench_main.SUITES)
    assert list(found)[: len(listed)] == listed  # the listed ones stay first, in their order
    assert list(found)[len(listed) :] == ["new-suite"]


def test_paired_timings_become_two_rows_and_a_verdict() -> None:
    from bench.timing import Pair, Timing, pair_lines, time_pair

    pair = time_pair(("ours", ["true"]), ("theirs", ["true"]), runs=3, warmup=0)
    assert len(pair.ratios) == 3 and (pair.ours.label, pair.theirs.label) == ("ours", "theirs")
    pair = Pair(
        Timing("dockops images", 0.09, 3), Timing("docker images", 0.03, 3), (2.0, 3.5, 3.0)
    )
    [section] = results.parse("images", ["## images", *pair_lines(pair, goal=3.0)])
    assert [(r.label, r.time, r.ratio) for r in section.rows] == [
        ("docker images", "30.0 ms", "x1.00"),
        ("dockops images", "90.0 ms", "x3.00"),
    ]
    assert section.notes == [
        "goal dockops images vs docker images: median paired ratio x3.00 <= 3.00: met"
    ]


def test_the_podman_suites_skip_without_a_service_and_run_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import archive_podman, prune_podman

    monkeypatch.delenv("DOCKOPS_TEST_PODMAN_HOST", raising=False)
    [archive] = archive_podman.run()
    [prune] = prune_podman.run()
    assert archive.startswith("## archive on Podman: skipped (DOCKOPS_TEST_PODMAN_HOST names")
    assert prune.startswith("## prune-dangling on Podman: skipped (")
    assert {"archive-podman", "prune-podman"} <= set(bench_main.SUITES)


def test_every_podman_contender_is_pointed_at_the_one_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import podman

    monkeypatch.setenv("DOCKOPS_TEST_PODMAN_HOST", "unix:///run/pm/podman.sock")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/engine/docker.sock")
    found = podman.find()
    assert isinstance(found, podman.Podman)
    # The CLI as the service's remote client: a plain `podman` would use the host's storage.
    assert found.command("save", "-o", "f.tar", "x")[1:] == [
        "--remote", "--url", "unix:///run/pm/podman.sock", "save", "-o", "f.tar", "x",
    ]  # fmt: skip
    assert found.socket == "/run/pm/podman.sock"
    assert found.env()["DOCKER_HOST"] == "unix:///run/pm/podman.sock"  # dockops's engine
    monkeypatch.setenv("DOCKOPS_TEST_PODMAN_HOST", "tcp://127.0.0.1:1")
    assert isinstance(podman.find(), str)
    assert results._podman() == []  # no Podman rows in the environment table


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize(
    ("suites", "flag"),
    [("archive-podman prune-podman", "podman"), ("archive prune", ""), ("", "1")],
)
def test_make_bench_starts_podman_for_its_suites_or_a_full_run(
    suites: str, flag: str, tmp_path: Path
) -> None:
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than pyproject.toml: make sees nothing to install
    done = subprocess.run(
        ["make", "-n", "-s", "-C", str(REPO), "bench", f"SUITES={suites}", f"STAMP={stamp}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    # with-engine.sh starts the Podman service when WITH_PODMAN is not empty.
    assert f"WITH_PODMAN={flag} " in done.stdout
    assert f"scripts/with-engine.sh .venv/bin/python -m bench {suites}" in done.stdout
