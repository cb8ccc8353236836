"""devenv's OCI image packer: a single-layer image-layout tar that containerd imports."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from devenv import images


def _image(tmp_path):
    program = tmp_path / "prog"
    program.write_bytes(b"\x7fELF not really")
    program.chmod(0o755)
    return images.Image(
        ("localhost/t/prog:1", "registry.example.com/t/prog:2"),
        {"/bin/prog": program},
        ("/bin/prog",),
        ("serve",),
        {"/bin/alias": "prog"},
    )


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else m for m in tar.getmembers()}


def test_archive_is_a_valid_oci_layout_naming_every_reference(tmp_path):
    archive, digest = images.oci_archive(_image(tmp_path))
    files = _members(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
    assert names == ["localhost/t/prog:1", "registry.example.com/t/prog:2"]
    assert {m["digest"] for m in index["manifests"]} == {digest}
    # Every blob is stored under its own digest.
    for name, data in files.items():
        if name.startswith("blobs/sha256/") and isinstance(data, bytes):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(files["blobs/sha256/" + digest.split(":")[1]])
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert config["config"]["Entrypoint"] == ["/bin/prog"]
    assert config["config"]["Cmd"] == ["serve"]
    (layer,) = manifest["layers"]
    assert config["rootfs"]["diff_ids"] == [layer["digest"]]

    layer_files = _members(files["blobs/sha256/" + layer["digest"].split(":")[1]])
    assert layer_files["bin/prog"] == b"\x7fELF not really"
    assert layer_files["bin/alias"].linkname == "prog"
    assert layer_files["tmp"].mode == 0o1777


def test_same_inputs_give_the_same_digest_and_a_change_another(tmp_path):
    image = _image(tmp_path)
    assert images.oci_archive(image)[1] == images.oci_archive(image)[1]
    before = images.oci_archive(image)[1]
    (tmp_path / "prog").write_bytes(b"changed")
    assert images.oci_archive(image)[1] != before


def test_demo_deployments_run_the_demo_app_image():
    from devenv.demo_objects import APPS, namespace_objects

    names = set(images.demo_image_names())
    for ns in APPS:
        for obj in namespace_objects(ns):
            if obj["kind"] == "Deployment":
                (container,) = obj["spec"]["template"]["spec"]["containers"]
                assert container["image"] in names
