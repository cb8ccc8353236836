"""The backup browser reads files from a bucket, which is input: gzip and tar bombs and
files of the wrong shape get a clear message on the page, never a 500 or a full memory."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib

import pytest
from django.urls import reverse

from backups.engine.storage.layout import Layout
from backups.engine.velero import reader as browse
from locations.models import BackupLocation

ITEM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "shop"}}


def zeros_gz(size: int, header: bytes = b"") -> bytes:
    """``header`` then ``size`` zero bytes, gzipped: about a thousandth of that on disk."""
    compressor = zlib.compressobj(9, wbits=31)
    chunk = bytes(1024 * 1024)
    out = [compressor.compress(header)]
    out += [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(out) + compressor.flush()


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def files(world, tmp_path, settings):
    """Write the world's backup files into a real filesystem location."""
    settings.PALETTE_FILESYSTEM_ROOTS = [str(tmp_path)]
    BackupLocation.objects.filter(pk=world.location.pk).update(path=str(tmp_path), prefix="")
    layout = Layout("")

    def write(kind: str, data: bytes) -> None:
        path = tmp_path / layout.backup_file(world.backup.name, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return write


def _contents(world, login):
    url = reverse("backup_contents", args=[world.backup.pk])
    return login(world.users["viewer"]).get(url, HTTP_HX_REQUEST="true")


def _item(world, login):
    url = reverse("backup_item", args=[world.backup.pk])
    query = {"type": "v1/ConfigMap", "namespace": "shop", "name": "x"}
    return login(world.users["viewer"]).get(url, query)


def test_a_gzip_bomb_in_the_results_is_refused_with_a_message(world, login, files):
    files("results", zeros_gz(200 * 1024 * 1024))
    files("resource-list", gzip.compress(b"{}"))
    response = _contents(world, login)
    assert response.status_code == 200
    assert b"decompresses to more than 64 MiB" in response.content


@pytest.mark.parametrize(
    "listing",
    [b"[1, 2]", b'{"v1/ConfigMap": "shop/x"}', b'{"v1/ConfigMap": [1]}', b"not json", b"\xff"],
)
def test_a_resource_list_of_the_wrong_shape_is_refused(world, login, files, listing):
    files("results", gzip.compress(b"{}"))
    files("resource-list", gzip.compress(listing))
    response = _contents(world, login)
    assert response.status_code == 200
    assert b"resource-list.json.gz is not" in response.content


def test_results_of_the_wrong_shape_are_refused(world, login, files):
    files("results", gzip.compress(json.dumps({"errors": {"velero": "oops"}}).encode()))
    files("resource-list", gzip.compress(b"{}"))
    assert b"results.gz is not what Velero writes" in _contents(world, login).content


def test_a_plain_archive_is_browsed(world, login, files):
    files(
        "archive",
        tar_gz({"resources/configmaps/namespaces/shop/x.json": json.dumps(ITEM).encode()}),
    )
    response = _item(world, login)
    assert response.status_code == 200 and b"ConfigMap" in response.content


def test_a_huge_object_in_the_archive_is_refused(world, login, files):
    name = "resources/configmaps/namespaces/shop/x.json"
    files("archive", tar_gz({name: b" " * (browse.MAX_ITEM_BYTES + 1)}))
    response = _item(world, login)
    assert response.status_code == 200
    assert b"larger than 16 MiB; not shown" in response.content


def test_a_tar_bomb_is_refused_before_it_is_read_through(world, login, files):
    # One 64 MiB member of zeros packed into ~64 KiB: refused from its header (larger
    # than any object a page shows), before its bytes are inflated.
    info = tarfile.TarInfo("resources/filler/cluster/big.json")
    info.size = 64 * 1024 * 1024
    files("archive", zeros_gz(info.size, info.tobuf()))
    response = _item(world, login)
    assert response.status_code == 200
    assert b"larger than 16 MiB; not shown" in response.content


def test_many_small_zero_members_are_refused_by_their_ratio(world, login, files):
    # 8 MiB members, each under the object cap, packed ~1000:1: the ratio gives them away.
    compressor = zlib.compressobj(9, wbits=31)
    parts = []
    for n in range(4):
        info = tarfile.TarInfo(f"resources/filler/cluster/big-{n}.json")
        info.size = 8 * 1024 * 1024
        parts.append(compressor.compress(info.tobuf() + bytes(info.size)))
    files("archive", b"".join(parts) + compressor.flush())
    response = _item(world, login)
    assert response.status_code == 200
    assert b"times its size (a gzip bomb?)" in response.content


def test_a_corrupt_archive_is_refused(world, login, files):
    files("archive", b"\x1f\x8b\x08\x00garbage" * 100)
    response = _item(world, login)
    assert response.status_code == 200
    assert b"Cannot read the archive" in response.content
