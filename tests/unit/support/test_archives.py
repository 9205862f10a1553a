"""tests/support/archives.py writes each layout as the engines do: its legacy v1 IDs and configs
are the ones Docker 20.10 and Podman 4.3 wrote for these configs (seen in their save streams of
the harness's images), and its Docker 25 archive holds together as moby's save.go makes it."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.support import archives
from tests.support.archives import Image, layer_tar, on_top, read_images

DOCKER_2010_CONFIG = (
    b'{"architecture":"amd64","config":{"Hostname":"366803d69868","Domainname":"","User":"","A'
    b'ttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,'
    b'"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/'
    b'bin"],"Cmd":["sh","-c","echo hi \\u003e /x"],"Image":"busybox:latest","Volumes":null,"Wor'
    b'kingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"dockops.harness.hash":"0cd5ed31c'
    b'b9a66ec12ffbce7dc17a61e71d7b9c66b1683acb7c4d2521300a4e2"}},"container":"366803d698687aaa'
    b'cfbcf5b7b6f128dc6349d54a4700ac43f48f4f3e6e37d07e","container_config":{"Hostname":"366803'
    b'd69868","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr"'
    b':true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/'
    b'local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh","-c","echo hi \\u003e /x"],"Image":'
    b'"busybox:latest","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels'
    b'":{"dockops.harness.hash":"0cd5ed31cb9a66ec12ffbce7dc17a61e71d7b9c66b1683acb7c4d2521300a'
    b'4e2"}},"created":"2026-11-30T06:59:08.154544046Z","docker_version":"20.10.24+dfsg1","his'
    b'tory":[{"created":"2026-11-30T06:59:05.638859654Z","comment":"Imported from '
    b'-"},{"created":"2026-11-30T06:59:08.154544046Z","created_by":"sh -c echo hi \\u003e /x"}]'
    b',"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:9ca950ec649f742ef7f6f57a461e'
    b'ef4de50ecd04e257cc42bdb7ef5b608a04b3","sha256:9611554ed1a50611d4b3ab857b86a90bed2f1d16f4'
    b'220b1d81644bd7b4597936"]}}'
)

DOCKER_2010_INTERMEDIATE_V1 = (
    b'{"id":"ab1775a3fe4e51dede7a4c09cd1e904349af1c92c26fb7c477758985ea93f4e9","created":"1970'
    b'-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStd'
    b'in":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"Stdin'
    b'Once":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint"'
    b':null,"OnBuild":null,"Labels":null},"os":"linux"}'
)

PODMAN_43_CONFIG = (
    b'{"created":"2026-11-30T06:56:01.765239011Z","architecture":"amd64","os":"linux","config"'
    b':{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh'
    b'"],"Labels":{"dockops.harness.hash":"0cd5ed31cb9a66ec12ffbce7dc17a61e71d7b9c66b1683acb7c'
    b'4d2521300a4e2"}},"rootfs":{"type":"layers","diff_ids":["sha256:9ca950ec649f742ef7f6f57a4'
    b'61eef4de50ecd04e257cc42bdb7ef5b608a04b3"]},"history":[{"created":"2026-11-30T06:56:01.76'
    b'5239011Z","created_by":"/bin/sh -c #(nop) ADD '
    b"file:9ca950ec649f742ef7f6f57a461eef4de50ecd04e257cc42bdb7ef5b608a04b3 in "
    b'/","comment":"imported from tarball"}]}'
)
# What the engines named the v1 folders of these images' layers.
DOCKER_2010_V1_IDS = [
    "ab1775a3fe4e51dede7a4c09cd1e904349af1c92c26fb7c477758985ea93f4e9",
    "f03c1c9fa8f38ae861b73f3d5493102362083d8c8481dc3e4cf5853a73626596",
]
PODMAN_43_V1_ID = "af406cb581da415537b26014d5d686dd907cdba28fe0313ff188e7a025e0ff27"


def _image(config: bytes, tags: tuple[str, ...] = ()) -> Image:
    # v1 IDs and configs depend on the config alone: stand-in layers will do.
    layers = tuple(layer_tar({str(i): b""}) for i in json.loads(config)["rootfs"]["diff_ids"])
    return Image(config=config, layers=layers, tags=tags)


def test_the_v1_ids_and_configs_are_docker_2010s() -> None:
    image = _image(DOCKER_2010_CONFIG)
    assert image.id == "sha256:82f704715491ddd519a7bf356f6c1105329c191c500e8a9d508fd2c7e6b4818f"
    configs = archives.v1_configs(image)
    assert [v1_id for v1_id, _ in configs] == DOCKER_2010_V1_IDS
    assert configs[0][1] == DOCKER_2010_INTERMEDIATE_V1
    top = json.loads(configs[1][1])
    assert top["parent"] == DOCKER_2010_V1_IDS[0] and top["config"] == image.doc()["config"]
    assert list(top) == [
        "id", "parent", "created", "container", "container_config", "docker_version", "config",
        "architecture", "os",
    ]  # fmt: skip


def test_podmans_v1_folders_and_names() -> None:
    image = _image(PODMAN_43_CONFIG, ("busybox:latest",))
    with tarfile.open(fileobj=io.BytesIO(archives.podman([image]))) as tar:
        members = tar.getmembers()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    diff_id = image.diff_ids[0][7:]
    assert [(m.name, m.linkname) for m in members] == [
        (f"{diff_id}.tar", ""),
        (f"{image.id[7:]}.json", ""),
        (f"{PODMAN_43_V1_ID}/layer.tar", f"../{diff_id}.tar"),
        (f"{PODMAN_43_V1_ID}/VERSION", ""),
        (f"{PODMAN_43_V1_ID}/json", ""),
        ("manifest.json", ""),
        ("repositories", ""),
    ]
    assert manifest[0]["RepoTags"] == ["docker.io/library/busybox:latest"]


def _two_images() -> list[Image]:
    """app:1 on Podman's busybox config (its layer made up), app:2 on top of it."""
    layer = layer_tar({"bin/sh": b"#!"})
    doc = {**json.loads(PODMAN_43_CONFIG), "rootfs": {"type": "layers", "diff_ids": []}}
    doc["rootfs"]["diff_ids"] = [archives.sha256(layer)]
    one = on_top(Image(config=archives.go_json(doc), layers=(layer,)), {"one": b"1"}, "app:1")
    return [one, on_top(one, {"two": b"2"}, "example.com/team/app:2")]


def _docker25_two_images() -> tuple[list[Image], dict[str, bytes], list[str]]:
    images = _two_images()
    with tarfile.open(fileobj=io.BytesIO(archives.docker25(images))) as tar:
        names = tar.getnames()
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    return images, files, names


def test_a_docker25_archive_is_in_moby_25s_order() -> None:
    _, files, names = _docker25_two_images()
    blobs = sorted(n for n in names if n.startswith("blobs/sha256/"))
    tail = ["index.json", "manifest.json", "oci-layout", "repositories"]
    assert names == ["blobs", "blobs/sha256", *blobs, *tail]  # the walk of moby's temp folder
    assert all(archives.sha256(files[n]) == "sha256:" + n[13:] for n in blobs)
    assert files["oci-layout"] == b'{"imageLayoutVersion": "1.0.0"}'


def test_a_docker25_archive_holds_together() -> None:
    images, files, _ = _docker25_two_images()
    manifest = json.loads(files["manifest.json"])
    index = json.loads(files["index.json"])
    for image, entry, described in zip(images, manifest, index["manifests"], strict=True):
        assert files[entry["Config"]] == image.config
        assert [archives.sha256(files[p]) for p in entry["Layers"]] == image.diff_ids
        assert sorted(entry["LayerSources"]) == sorted(image.diff_ids)
        oci = json.loads(files[f"blobs/sha256/{described['digest'][7:]}"])
        assert oci["config"] == {
            "mediaType": archives.OCI_CONFIG, "digest": image.id, "size": len(image.config)
        }  # fmt: skip
        assert [layer["digest"] for layer in oci["layers"]] == image.diff_ids
        assert {layer["mediaType"] for layer in oci["layers"]} == {archives.OCI_LAYER}
    names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
    assert names == ["docker.io/library/app:1", "example.com/team/app:2"]
    assert [e["RepoTags"] for e in manifest] == [["app:1"], ["example.com/team/app:2"]]
    repositories = json.loads(files["repositories"])
    assert repositories["app"] == {"1": images[0].diff_ids[-1][7:]}


def test_an_untagged_image_still_has_its_index_entry() -> None:
    image = _image(PODMAN_43_CONFIG)
    with tarfile.open(fileobj=io.BytesIO(archives.docker25([image]))) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert "repositories" not in tar.getnames()
    assert len(index["manifests"]) == 1 and "annotations" not in index["manifests"][0]
    assert manifest[0]["RepoTags"] is None


@pytest.mark.parametrize("writer", [archives.docker25, archives.legacy, archives.podman])
def test_every_layout_reads_back(writer: archives.Writer) -> None:
    images = _two_images()
    assert read_images(writer(images)) == images
    for image in images:
        assert [archives.sha256(layer) for layer in image.layers] == image.diff_ids
