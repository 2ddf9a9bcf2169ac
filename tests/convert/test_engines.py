"""One planner, one per-photo worker: the same photos give the same records and depth from a local
folder, a file:// URL and an object store (fsspec's memory://), with cameras, mesh formats and
missing extras handled alike. (Ray gives them too: tests/convert/test_ray_engine.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions, convert
from tr2m_cli.errors import MissingExtraError
from tr2m_cli.io import storage
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.depth_files import read_depth_tiff
from tr2m_cli.io.intrinsics import CameraOptions
from tr2m_cli.io.mesh import MeshOptions
from tr2m_cli.model.preprocess import SizePolicy

FAST = SizePolicy(token_budget=120)
# What differs by when and from where a photo was converted, not by how: the times, and the
# photo file's identity as its store reports it (and with it the fingerprint).
WHEN_AND_WHERE = ("seconds", "finished", "fingerprint")


def options(**kwargs) -> ConvertOptions:
    defaults = dict(progress=False, decode_workers=1, size=FAST, captions=CaptionRules(caption="A room."))
    return ConvertOptions(**{**defaults, **kwargs})


def photos(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    for i, (name, size) in enumerate([("a.png", (48, 64)), ("k/b.png", (64, 48)), ("k/c.jpg", (48, 64))]):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(size[::-1], Image.BILINEAR).save(path)
    (folder / "k" / "broken.png").write_bytes(b"not a photo")
    (folder / "a.camera.json").write_text(json.dumps({"fx": 70.0, "fy": 72.0, "cx": 31.0, "cy": 23.0}))
    (folder / "k" / "c.txt").write_text("A kitchen with a window.\n")
    return folder


def upload(folder: Path, prefix: storage.Url) -> storage.Url:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            storage.write_bytes(storage.join(prefix, path.relative_to(folder).as_posix()), path.read_bytes())
    return prefix


def read_records(manifest) -> dict[str, dict]:
    lines = storage.read_bytes(manifest).decode().splitlines()
    return {record["input"]: record for record in map(json.loads, lines)}


def comparable(record: dict, root) -> dict:
    """A record without the times and the photo's file identity, its location written as ROOT."""
    record = json.loads(json.dumps(record).replace(str(root), "ROOT"))
    record = {k: v for k, v in record.items() if k not in WHEN_AND_WHERE}
    if "settings" in record:
        record["settings"] = {**record["settings"], "input_file": None}
    return record


def depth_of(out, key: str, tmp_path: Path) -> np.ndarray:
    copy = tmp_path / "copies" / key
    with storage.staged_write(copy) as temp:
        temp.write_bytes(storage.read_bytes(storage.join(out, key)))
    return read_depth_tiff(copy)[0]


def test_a_folder_a_file_url_and_a_bucket_give_the_same_records_and_depth(tmp_path, tiny_model, memory_bucket, single_thread):
    folder = photos(tmp_path / "photos")
    (tmp_path / "cameras.csv").write_text("image,fx,fy,cx,cy,width,height\nk/b.png,120,120,47.5,63.5,96,128\n")
    chosen = options(outputs=("tiff", "mesh"), mesh=MeshOptions(format="ply"),
                     camera=CameraOptions(intrinsics_file=tmp_path / "cameras.csv"))  # fmt: skip
    bucket = upload(folder, memory_bucket / "photos")
    runs = {
        "folder": convert([folder], tmp_path / "from-folder", chosen, model=tiny_model),
        "file-url": convert([f"file://{folder}"], f"file://{tmp_path / 'from-file-url'}", chosen, model=tiny_model),
        "bucket": convert([str(bucket)], str(memory_bucket / "depth"), chosen, model=tiny_model),
    }
    outs = {"folder": tmp_path / "from-folder", "file-url": tmp_path / "from-file-url", "bucket": memory_bucket / "depth"}
    for name, summary in runs.items():
        assert (summary.photos, summary.converted, summary.failed, summary.exit_code) == (4, 3, 1, 1), name
    records = {name: read_records(storage.join(out, "manifest.jsonl")) for name, out in outs.items()}
    untimed = lambda rs: {k: {f: v for f, v in r.items() if f not in ("seconds", "finished")} for k, r in rs.items()}  # noqa: E731
    assert untimed(records["file-url"]) == untimed(records["folder"])  # file:// is the folder itself
    expected = {key: comparable(record, folder) for key, record in records["folder"].items()}
    assert {key: comparable(record, bucket) for key, record in records["bucket"].items()} == expected
    # What the cameras, the caption sidecar and the mesh format made of them, on every path.
    assert (expected["a.png"]["intrinsics"]["source"], expected["a.png"]["intrinsics"]["fx"]) == ("sidecar", 70.0)
    assert (expected["k/b.png"]["intrinsics"]["source"], expected["k/b.png"]["intrinsics"]["fx"]) == ("intrinsics-file", 60.0)
    assert expected["k/c.jpg"]["intrinsics"]["source"] == "default" and expected["k/c.jpg"]["caption_source"] == "sidecar"
    assert expected["a.png"]["outputs"]["mesh"] == "a.mesh.ply" and "not an image" in expected["k/broken.png"]["error"]
    for key in ("a", "k/b", "k/c"):
        reference = depth_of(outs["folder"], f"{key}.depth.tiff", tmp_path / "folder")
        for name in ("file-url", "bucket"):
            np.testing.assert_allclose(depth_of(outs[name], f"{key}.depth.tiff", tmp_path / name), reference, rtol=1e-6)
    assert storage.is_file(memory_bucket / "depth" / "k" / "b.mesh.ply")
    again = convert([str(bucket)], str(memory_bucket / "depth"), chosen, model=tiny_model)
    assert (again.converted, again.skipped) == (0, 3)  # its .ply meshes are found: current


def test_a_changed_camera_file_redoes_that_photo_on_an_object_store(tmp_path, tiny_model, memory_bucket, single_thread):
    bucket = upload(photos(tmp_path / "photos"), memory_bucket / "photos")
    out = str(memory_bucket / "depth")
    chosen = options(outputs=("tiff",))
    first = convert([str(bucket)], out, chosen, model=tiny_model)
    assert (first.converted, first.default_camera) == (3, 2)
    assert read_records(memory_bucket / "depth" / "manifest.jsonl")["a.png"]["intrinsics"]["fx"] == 70.0
    storage.write_text(bucket / "a.camera.json", json.dumps({"fx": 90.0, "fy": 90.0, "cx": 31.0, "cy": 23.0}))
    rerun = convert([str(bucket)], out, chosen, model=tiny_model)
    assert (rerun.converted, rerun.redone, rerun.skipped) == (1, 1, 2)
    record = read_records(memory_bucket / "depth" / "manifest.jsonl")["a.png"]
    assert record["redone_because"] == ["camera"] and record["intrinsics"]["fx"] == 90.0
    assert json.loads(storage.read_bytes(memory_bucket / "depth" / "a.intrinsics.json"))["fx"] == 90.0


def test_a_missing_extra_is_refused_before_anything_is_written_to_an_object_store(tmp_path, tiny_model, memory_bucket, monkeypatch):
    bucket = upload(photos(tmp_path / "photos"), memory_bucket / "photos")
    monkeypatch.setitem(sys.modules, "OpenEXR", None)  # as if the `exr` extra were not installed
    with pytest.raises(MissingExtraError, match=r"--outputs exr needs .*pip install 'tr2m\[exr\]'"):
        convert([str(bucket)], str(memory_bucket / "depth"), options(outputs=("tiff", "exr")), model=tiny_model)
    assert storage.list_files(memory_bucket / "depth", hidden=True) == []
