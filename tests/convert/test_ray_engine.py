"""`convert` on a Ray cluster: the same outputs and records as on one machine, reruns that skip
finished work, and no lost work when a worker or the driver is killed. These run in a private
network namespace (see tests/conftest.py) on a local cluster of 4 logical CPUs and 2 logical GPUs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions, convert
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.depth_files import read_depth_tiff
from tr2m_cli.io.manifest_parts import PARTS_FOLDER
from tr2m_cli.model.preprocess import SizePolicy

pytestmark = pytest.mark.netns
FAST = SizePolicy(token_budget=120)
DRIVER = Path(__file__).with_name("ray_driver.py")
TIMING_FIELDS = ("seconds", "finished")


def options(**kwargs) -> ConvertOptions:
    defaults = dict(progress=False, size=FAST, device="cpu", precision="fp32", batch_size=2, captions=CaptionRules(caption="A room."))
    return ConvertOptions(**{**defaults, **kwargs})


def photos(folder: Path, count: int, sizes=((48, 64), (64, 48), (30, 90))) -> Path:
    for i in range(count):
        rng = np.random.default_rng(i)
        small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        size = sizes[i % len(sizes)]
        path = folder / ("a" if i % 2 else "b") / f"p{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(small).resize(size[::-1], Image.BILINEAR).save(path)
    return folder


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}


def files(out: Path) -> list[str]:
    """What a person sees under `out` (lock files are hidden)."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_ray_gives_what_the_local_engine_gives(ray_cluster, tiny_model_dir, tmp_path):
    from tr2m_cli.convert.ray_engine import convert_ray

    folder = photos(tmp_path / "photos", 7)
    (folder / "a" / "broken.jpg").write_bytes(b"not a photo")
    long_caption = "A long corridor with doors on both sides and lamps on the ceiling, " * 3
    (tmp_path / "captions.json").write_text(json.dumps({"b/p02.png": long_caption}))
    rules = CaptionRules(caption_file=tmp_path / "captions.json", caption="A room.")
    chosen = options(outputs=("tiff", "npy", "preview", "png16"), captions=rules)
    local = convert([folder], tmp_path / "local", chosen, model=tiny_model_dir)
    distributed = convert_ray([folder], tmp_path / "ray", chosen, model=tiny_model_dir, workers="1,2",
                              gpus_per_worker=0.5, decode_on_cpus=True)  # fmt: skip

    assert (distributed.photos, distributed.converted, distributed.failed, distributed.exit_code) == (8, 7, 1, 1)
    assert (local.converted, local.failed, local.exit_code) == (7, 1, 1)
    assert files(tmp_path / "ray") == files(tmp_path / "local")  # the parts are merged and gone
    local_records, ray_records = manifest(tmp_path / "local"), manifest(tmp_path / "ray")
    # Equal but for timing and float rounding (other batches, other thread counts per worker).
    strip = lambda r: {**without_timing(r), "depth_m": None}  # noqa: E731
    assert [strip(r) for r in ray_records] == [strip(r) for r in local_records]
    for mine, theirs in zip(ray_records, local_records):
        assert mine.get("depth_m", {}) == pytest.approx(theirs.get("depth_m", {}), rel=1e-5)
    assert [r["input"] for r in ray_records if "caption_tokens" in r] == ["b/p02.png"]  # over CLIP's 77
    (failure,) = [r for r in ray_records if r["status"] == "failed"]
    assert failure["input"] == "a/broken.jpg" and "broken.jpg: not an image" in failure["error"]
    for record in local_records:
        if record["status"] != "ok":
            continue
        name = record["outputs"]["tiff"]
        depth_local, tags_local = read_depth_tiff(tmp_path / "local" / name)
        depth_ray, tags_ray = read_depth_tiff(tmp_path / "ray" / name)
        assert tags_ray == tags_local
        np.testing.assert_allclose(depth_ray, depth_local, rtol=1e-5, atol=1e-6)
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert (summary["converted"], summary["failed"], summary["exit_code"], summary["options"]["engine"]) == (7, 1, 1, "ray")
    assert summary["failures"] == [{"input": "a/broken.jpg", "error": failure["error"]}]


def test_ray_uses_each_photos_camera_and_the_mesh_format_as_the_local_engine_does(ray_cluster, tiny_model_dir, tmp_path):
    """Planned once, converted by the same worker: a camera sidecar, an intrinsics file and
    --mesh-format ply give on Ray (photos named by a file:// URL) what they give here."""
    from tr2m_cli.convert.ray_engine import convert_ray
    from tr2m_cli.io.intrinsics import CameraOptions
    from tr2m_cli.io.mesh import MeshOptions

    folder = photos(tmp_path / "photos", 3)
    (folder / "b" / "p00.camera.json").write_text(json.dumps({"fx": 80.0, "fy": 80.0, "cx": 31.5, "cy": 23.5}))
    (tmp_path / "cameras.csv").write_text("image,fx,fy,cx,cy,width,height\na/p01.png,100,100,47.5,63.5,96,128\n")
    chosen = options(outputs=("tiff", "mesh"), mesh=MeshOptions(format="ply"),
                     camera=CameraOptions(intrinsics_file=tmp_path / "cameras.csv"))  # fmt: skip
    local = convert([folder], tmp_path / "local", chosen, model=tiny_model_dir)
    distributed = convert_ray([f"file://{folder}"], tmp_path / "ray", chosen, model=tiny_model_dir, workers=1)
    assert (local.converted, distributed.converted, distributed.default_camera, distributed.exit_code) == (3, 3, 1, 0)
    assert files(tmp_path / "ray") == files(tmp_path / "local") and "b/p00.mesh.ply" in files(tmp_path / "ray")
    local_records, ray_records = manifest(tmp_path / "local"), manifest(tmp_path / "ray")
    strip = lambda r: {**without_timing(r), "depth_m": None}  # noqa: E731
    assert [strip(r) for r in ray_records] == [strip(r) for r in local_records]  # fingerprints (with cameras) too
    sources = {r["input"]: (r["intrinsics"]["source"], r["intrinsics"]["fx"]) for r in ray_records}
    assert sources == {"a/p01.png": ("intrinsics-file", 50.0), "b/p00.png": ("sidecar", 80.0), "b/p02.png": ("default", sources["b/p02.png"][1])}
    for record in local_records:
        name = record["outputs"]["tiff"]
        np.testing.assert_allclose(read_depth_tiff(tmp_path / "ray" / name)[0], read_depth_tiff(tmp_path / "local" / name)[0],
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    (folder / "b" / "p00.camera.json").write_text(json.dumps({"fx": 90.0, "fy": 90.0, "cx": 31.5, "cy": 23.5}))
    again = convert_ray([f"file://{folder}"], tmp_path / "ray", chosen, model=tiny_model_dir, workers=1)
    assert (again.converted, again.redone, again.skipped) == (1, 1, 2)
    assert next(r for r in manifest(tmp_path / "ray") if r["input"] == "b/p00.png")["redone_because"] == ["camera"]


def test_a_rerun_converts_only_what_is_missing(ray_cluster, tiny_model_dir, tmp_path):
    from tr2m_cli.convert.ray_engine import convert_ray

    folder = photos(tmp_path / "photos", 6)
    out = tmp_path / "out"
    first = convert_ray([folder], out, options(), model=tiny_model_dir, workers=2)
    assert (first.converted, first.skipped) == (6, 0)
    untouched = (out / "b" / "p00.depth.tiff").stat().st_mtime_ns
    (out / "a" / "p03.preview.png").unlink()  # one output of one photo gone
    second = convert_ray([folder], out, options(), model=tiny_model_dir, workers=2)
    assert (second.converted, second.skipped, second.failed, second.exit_code) == (1, 5, 0, 0)
    assert (out / "a" / "p03.preview.png").is_file()
    assert (out / "b" / "p00.depth.tiff").stat().st_mtime_ns == untouched
    records = manifest(out)
    assert [r["input"] for r in records] == sorted(f"{'a' if i % 2 else 'b'}/p{i:02d}.png" for i in range(6))
    assert all(r["status"] == "ok" for r in records)


def _worker_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"PhotoConverter" in command and int(entry) != os.getpid():
                pids.append(int(entry))
    return pids


def test_a_killed_worker_is_replaced_and_its_photos_redone(ray_cluster, tiny_model_dir, tmp_path):
    from tr2m_cli.convert.ray_engine import convert_ray

    folder = photos(tmp_path / "photos", 16)
    out = tmp_path / "out"
    killed: list[int] = []
    finished = threading.Event()

    def kill_a_worker_after_its_first_batch() -> None:
        while not finished.is_set():
            parts = out / PARTS_FOLDER / "manifest.jsonl"
            if parts.is_dir() and any(parts.iterdir()):
                for pid in _worker_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_after_its_first_batch)
    killer.start()
    try:
        # The default token budget (~1240 patches) makes each photo take long enough to kill mid-run.
        summary = convert_ray([folder], out, options(size=None, batch_size=1), model=tiny_model_dir, workers=1)
    finally:
        finished.set()
        killer.join()
    assert killed, "no worker was running when the first batch finished"
    assert (summary.converted, summary.failed, summary.exit_code) == (16, 0, 0)
    records = manifest(out)
    assert len(records) == 16 and len({r["input"] for r in records}) == 16
    assert all(r["status"] == "ok" for r in records)


def test_a_killed_driver_loses_no_record_and_a_rerun_finishes_the_rest(ray_cluster, tiny_model_dir, tmp_path):
    from tr2m_cli.convert.ray_engine import convert_ray

    folder = photos(tmp_path / "photos", 12)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    driver = subprocess.Popen(
        [sys.executable, str(DRIVER), ray_cluster, str(tiny_model_dir), str(folder), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    parts = out / PARTS_FOLDER / "manifest.jsonl"
    while time.monotonic() < deadline and driver.poll() is None:
        if parts.is_dir() and len(list(parts.iterdir())) >= 2:
            break
        time.sleep(0.02)
    assert driver.poll() is None, driver.stderr.read().decode()[-3000:]
    driver.kill()  # SIGKILL: no cleanup, no merge, no summary
    driver.wait()
    recorded_before = {}
    for part in parts.iterdir():
        for line in part.read_text().splitlines():
            record = json.loads(line)
            recorded_before[record["input"]] = (out / record["outputs"]["tiff"]).stat().st_mtime_ns
    assert 2 <= len(recorded_before) < 12
    assert not (out / "manifest.jsonl").exists()

    same = options(batch_size=1, size=SizePolicy(token_budget=600))  # as the driver ran: the same fingerprints
    rerun = convert_ray([folder], out, same, model=tiny_model_dir, workers=1)
    assert rerun.skipped >= len(recorded_before) and rerun.converted + rerun.skipped == 12 and rerun.exit_code == 0
    records = manifest(out)
    assert sorted(r["input"] for r in records) == sorted({r["input"] for r in records}) and len(records) == 12
    assert all(r["status"] == "ok" for r in records)
    for key, mtime in recorded_before.items():  # done once: finished photos were not redone
        record = next(r for r in records if r["input"] == key)
        assert (out / record["outputs"]["tiff"]).stat().st_mtime_ns == mtime
    assert not parts.exists() or not any(parts.iterdir())


def test_s3_in_s3_out_through_the_command_line(ray_cluster, s3_bucket, tiny_model_dir, tmp_path):
    """A bucket of frames, a caption file in the bucket, outputs to the bucket (moto on 127.0.0.1)."""
    import fsspec
    from click.testing import CliRunner

    from tr2m_cli.cli import cli
    from tr2m_cli.io import storage

    folder = photos(tmp_path / "photos", 5)
    fs = fsspec.filesystem("s3")
    fs.put(str(folder) + "/", f"{s3_bucket}/frames/", recursive=True)
    fs.pipe_file(f"{s3_bucket}/captions.jsonl", b'{"image": "a/p01.png", "caption": "A bright corridor."}\n')
    fs.invalidate_cache()
    command = ["convert", f"s3://{s3_bucket}/frames", "--out", f"s3://{s3_bucket}/depth", "--caption-file",
               f"s3://{s3_bucket}/captions.jsonl", "--domain", "indoor", "--model", str(tiny_model_dir), "--device", "cpu",
               "--precision", "fp32", "--resolution", "120", "--engine", "ray", "--workers", "2", "--gpus-per-worker", "1",
               "--batch-size", "2", "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, command, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    fs.invalidate_cache()
    keys = sorted(k.split("/depth/", 1)[1] for k in fs.find(f"{s3_bucket}/depth"))
    local = convert([folder], tmp_path / "local", options(size=SizePolicy(token_budget=120), captions=CaptionRules(domain="indoor")),
                    model=tiny_model_dir)  # fmt: skip
    assert local.converted == 5
    assert keys == files(tmp_path / "local")  # the layout a local disk gets: no parts, no temporaries
    records = [json.loads(line) for line in fs.cat_file(f"{s3_bucket}/depth/manifest.jsonl").decode().splitlines()]
    assert len(records) == 5 and all(r["status"] == "ok" for r in records)
    corridor = next(r for r in records if r["input"] == "a/p01.png")
    assert (corridor["caption"], corridor["caption_source"]) == ("A bright corridor.", "caption-file")
    with storage.staged_write(tmp_path / "p01.depth.tiff") as temp:
        temp.write_bytes(fs.cat_file(f"{s3_bucket}/depth/a/p01.depth.tiff"))
    assert read_depth_tiff(tmp_path / "p01.depth.tiff")[1]["caption"] == "A bright corridor."
    assert "testing-secret-key" not in result.output

    again = CliRunner().invoke(cli, command, catch_exceptions=False)
    assert again.exit_code == 0
    summary = json.loads(fs.cat_file(f"{s3_bucket}/depth/summary.json"))
    assert (summary["converted"], summary["skipped"]) == (0, 5)
