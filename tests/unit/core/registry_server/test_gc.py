"""Reading the registry collector's log: what it deletes, and which of those an index holds."""

from __future__ import annotations

from dockops.core.registry_server.gc import read_log


def _d(name: str) -> str:
    return "sha256:" + name * (64 // len(name))


TRAILING = " "  # 2.8 ends its "marking manifest" lines with a space
# registry 2.8's `garbage-collect --dry-run --delete-untagged` on: multi:v1, a manifest list of
# two untagged images (aa, bb); multi:plain, an image (cc); an untagged image in no index (dd);
# other/app with an untagged image aa too (pushed there as well, in no index there).
LOG_2X = f"""\
time="2024-01-01T00:00:00Z" level=info msg="redis not configured" go.version=go1.19
multi
manifest eligible for deletion: {_d("aa")}
multi: marking manifest {_d("cc")}{TRAILING}
multi: marking blob {_d("c1")}
multi: marking blob {_d("c2")}
manifest eligible for deletion: {_d("bb")}
manifest eligible for deletion: {_d("dd")}
multi: marking manifest {_d("ee")}{TRAILING}
multi: marking blob {_d("aa")}
multi: marking blob {_d("bb")}
other/app
manifest eligible for deletion: {_d("aa")}

8 blobs marked, 3 blobs and 4 manifests eligible for deletion
blob eligible for deletion: {_d("a1")}
"""


def test_the_images_of_a_kept_index_are_found_among_the_deleted() -> None:
    log = read_log(LOG_2X)
    assert log.deleted == [
        ("multi", _d("aa")),
        ("multi", _d("bb")),
        ("multi", _d("dd")),
        ("other/app", _d("aa")),
    ]
    # aa in other/app is referenced by nothing there: deleting it there breaks nothing.
    assert log.referenced == [("multi", _d("aa"), _d("ee")), ("multi", _d("bb"), _d("ee"))]


def test_a_3x_log_lists_only_what_nothing_references() -> None:
    # distribution v3 keeps referenced manifests, and names the repository in the line.
    log = read_log(
        f"multi\nmulti: marking manifest {_d('ee')} \nmulti: marking blob {_d('aa')}\n"
        f"manifest eligible for deletion: {{multi {_d('dd')} [plain]}}\n"
    )
    assert log.deleted == [("multi", _d("dd"))] and log.referenced == []


def test_a_plain_collection_deletes_no_manifest() -> None:
    log = read_log(f"multi\nmulti: marking manifest {_d('cc')} \n\n1 blobs marked, 0 blobs\n")
    assert log.deleted == [] and log.referenced == []
