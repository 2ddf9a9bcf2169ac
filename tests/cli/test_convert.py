"""`tr2m convert` as users run it: in-process, as a real process, killed, and misused."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tr2m_cli.cli import cli
from tr2m_cli.io.depth_files import read_depth_tiff
from tr2m_cli.io.manifest import read_manifest

EXAMPLES = ["indoor/coffee.jpg", "indoor/tum_office.jpg", "outdoor/cameraman.png", "outdoor/rocket.jpg"]


def run(*args: str):
    return CliRunner().invoke(cli, ["convert", *map(str, args)], catch_exceptions=False)


def test_examples_end_to_end(examples_dir, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    result = run(
        examples_dir, "--caption-file", examples_dir / "captions.json", "--model", tiny_model_dir, "--out", out,
        "--outputs", "tiff,preview,ply", "--stride", 2, "--max-depth", 3, "--resolution", 300, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = read_manifest(out / "manifest.jsonl")
    assert sorted(records) == EXAMPLES
    captions = json.loads((examples_dir / "captions.json").read_text())
    for key in EXAMPLES:
        with Image.open(examples_dir / key) as photo:
            width, height = photo.size
        stem = out / Path(key).with_suffix("")
        depth, tags = read_depth_tiff(f"{stem}.depth.tiff")
        assert depth.dtype == np.float32 and depth.shape == (height, width)
        assert np.isfinite(depth).all() and (depth > 0).all()
        assert tags["unit"] == "metres" and tags["caption"] == captions[key] and tags["model"] == "tiny-random"
        assert {"fx", "fy", "cx", "cy", "source"} <= set(tags["intrinsics"])
        with Image.open(f"{stem}.preview.png") as preview:
            assert preview.size == (width, height)
        record = records[key]
        assert record["status"] == "ok" and record["caption"] == captions[key] and record["caption_source"] == "caption-file"
        assert record["size"] == [height, width] and set(record["depth_m"]) >= {"min", "median", "max"}
        assert record["depth_m"]["min"] <= record["depth_m"]["median"] <= record["depth_m"]["max"]
        assert all((out / path).is_file() for path in record["outputs"].values())
        assert record["seconds"] > 0 and record["intrinsics"]["source"] in ("exif", "default")
        # At most the stride-2 pixels within 3 m (flying pixels at depth edges are dropped too;
        # the exact count is checked with edge removal off, below).
        within = int(np.count_nonzero(depth[::2, ::2] <= 3.0))
        assert 0 < record["points"] <= within
    intrinsics = json.loads((out / "indoor" / "tum_office.intrinsics.json").read_text())
    assert intrinsics["source"] == "exif" and intrinsics["fx"] == pytest.approx(28 * 800 / math.hypot(36, 24))
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["photos"], summary["converted"], summary["failed"], summary["exit_code"]) == (4, 4, 0, 0)


def test_point_clouds_open_in_open3d_with_the_expected_count(examples_dir, tmp_path, tiny_model_dir, open3d):
    o3d = open3d
    photo = examples_dir / "indoor" / "coffee.jpg"
    out = tmp_path / "out"
    result = run(photo, "--caption", "A cup of coffee.", "--model", tiny_model_dir, "--out", out, "--outputs", "tiff,ply",
                 "--stride", 3, "--max-depth", 2.5, "--edge-angle", 0, "--resolution", 200, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    depth, _ = read_depth_tiff(out / "coffee.depth.tiff")
    cloud = o3d.io.read_point_cloud(str(out / "coffee.points.ply"))
    assert cloud.has_colors() and len(cloud.points) == np.count_nonzero(depth[::3, ::3] <= 2.5)
    assert np.asarray(cloud.points)[:, 2].max() <= 2.5 + 1e-6


def test_as_a_subprocess_with_a_bad_photo_exits_1(examples_dir, tmp_path, tiny_model_dir):
    (examples_dir / "outdoor" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tr2m_cli", "convert", str(examples_dir), "--caption-file", str(examples_dir / "captions.json"),
               "--domain", "outdoor", "--model", str(tiny_model_dir), "--out", str(out), "--resolution", "200"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "tr2m: failed: " in done.stderr and "broken.jpg" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout.strip().startswith("4 of 5 photos converted, 1 failed in ")
    assert read_manifest(out / "manifest.jsonl")["outdoor/broken.jpg"]["caption_source"] == "domain"
    assert len(list(out.rglob("*.depth.tiff"))) == 4


def test_a_killed_run_resumes_without_duplicates(tmp_path, tiny_model_dir):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    names = [f"seq{i % 3}/frame{i:03d}.png" for i in range(36)]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize((320, 240)).save(folder / name)
    out = tmp_path / "out"
    args = ["convert", str(folder), "--caption", "A corridor.", "--model", str(tiny_model_dir), "--out", str(out),
            "--outputs", "tiff,preview,npy", "--batch-size", "1", "--resolution", "120", "--quiet"]  # fmt: skip
    suffixes = (".depth.tiff", ".preview.png", ".depth.npy", ".intrinsics.json")

    def complete() -> int:
        return sum(all((out / f"{Path(n).with_suffix('')}{s}").is_file() for s in suffixes) for n in names)

    process = subprocess.Popen([sys.executable, "-m", "tr2m_cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while not complete() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # no clean-up of any kind: as a power cut or the OOM killer
    process.wait(timeout=30)
    finished = complete()
    assert 0 < finished < len(names), "the run was not interrupted mid-way"
    # Photos recorded before the kill are current; one whose files were written but whose record
    # was not is redone (nothing says which settings made it).
    recorded = sum(r["status"] == "ok" for r in read_manifest(out / "manifest.jsonl").values())

    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = (out / "manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["input"] for line in manifest) == sorted(names)  # once each
    summary = json.loads((out / "summary.json").read_text())
    assert summary["converted"] + summary["skipped"] == len(names) and summary["skipped"] == recorded
    expected = {f"{Path(n).with_suffix('')}{s}" for n in names for s in suffixes}
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    locks = {".tr2m-run.lock", ".manifest.jsonl.lock"}  # empty lock files, kept for the next run
    assert written == expected | {"manifest.jsonl", "summary.json"} | locks  # no temporaries, nothing twice


@pytest.mark.parametrize(
    "args,message",
    [
        (["{missing}"], "missing.jpg: no such file or folder"),
        (["{photo}", "--outputs", "tiff,stl"], "--outputs 'tiff,stl': choose from"),
        (["{photo}", "--intrinsics", "{bad_json}"], "bad.json: not valid JSON"),
        (["{photo}", "--colmap", "{missing}"], "missing.jpg: no such COLMAP model folder"),
        (["{photo}", "--shard", "4/3"], "shard 4/3"),
        (["{photo}", "--size", "100x100"], "multiples of 14"),
        (["{photo}", "--resolution", "300", "--size", "434x560"], "either --resolution or --size"),
        (["{photo}", "--domain", "underwater"], "domain 'underwater'"),
        (["{photo}", "--caption-file", "{bad_json}"], "bad.json: not valid JSON"),
        (["{photo}", "--fy", "500"], "--fy needs --fx"),
        (["{photo}", "--depth-range", "5", "1"], "--depth-range 5 1"),
        (["{photo}", "--model", "no-such-model"], "no-such-model"),
        (["{photo}", "--out", "{file}/out"], "is a file"),
        (["{photo}", "--gpus-per-worker", "1"], "--gpus-per-worker: Ray engine options; add --engine ray"),
        (["{photo}", "--workers", "2,4"], "ranges are for --engine ray"),
        (["{photo}", "--engine", "ray", "--workers", "8,2"], "--workers 8,2: expected"),
        (["{photo}", "--engine", "ray", "--auto-caption"], "caption first with `tr2m caption --engine ray`"),
        (["s3://bucket/photos", "{photo}"], "inputs mix local paths and storage URLs"),
    ],
)
def test_usage_and_setup_errors_are_one_line_exit_2_and_write_nothing(tmp_path, tiny_model_dir, args, message):
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (32, 24)).save(photo)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "file").write_text("x")
    values = {"missing": tmp_path / "missing.jpg", "photo": photo, "bad_json": tmp_path / "bad.json", "file": tmp_path / "file"}
    args = [a.format(**values) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_model_dir)]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, ["convert", *args, "--caption", "A room."])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tr2m: error: ") and message in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom tr2m_cli.cli import cli\n"
        "r = CliRunner().invoke(cli, ['convert', '--help']); assert r.exit_code == 0, r.output\n"
        "assert '--caption-file' in r.output and 'metres' in r.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'open3d', 'numpy', 'PIL', 'ray', 'fsspec') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "[]"


def test_ctrl_c_exits_130_with_advice(tmp_path, tiny_model_dir, monkeypatch):
    import tr2m_cli.convert

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr2m_cli.convert, "convert", interrupted)
    photo = tmp_path / "a.jpg"
    Image.new("RGB", (32, 24)).save(photo)
    result = CliRunner().invoke(cli, ["convert", str(photo), "--caption", "A room.", "--out", str(tmp_path / "out")])
    assert result.exit_code == 130
    assert "interrupted" in result.output and "run the same command again" in result.output


def test_a_video_with_frame_selection_and_a_photo_in_one_command(tmp_path, tiny_model_dir):
    pytest.importorskip("av", reason="the 'video' extra is not installed")
    from tr2m_cli.sequences.testing import moving_pattern, write_video

    video = write_video(tmp_path / "drive.mp4", moving_pattern(10, 48, 64), fps=10)
    Image.fromarray(moving_pattern(1, 48, 64)[0]).save(tmp_path / "still.png")
    out = tmp_path / "out"
    result = run(
        video, tmp_path / "still.png", "--caption", "A street.", "--model", tiny_model_dir, "--out", out,
        "--every", 2, "--start", "0.2s", "--end", 8, "--resolution", 120, "--smoothing", 3,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "drive").glob("*.tiff")) == [f"{i:06d}.depth.tiff" for i in (2, 4, 6)]
    assert (out / "still.depth.tiff").is_file() and (out / "drive" / "drive.preview.mp4").is_file()
    info = json.loads((out / "drive" / "clip.json").read_text())
    assert info["smoothing"]["time_constant"] == "frame 3" and info["selection"]["every"] == 2
    assert "1 of 1 photo converted; 1 of 1 clip converted (3 frames) in " in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--start", "2.5"], "--start '2.5'"),
        (["--scene-captions"], "--scene-captions"),
        (["--smoothing", "0s"], "--smoothing"),
        (["--end", "3", "--start", "5"], "--end"),
    ],
)
def test_clip_options_misused_are_one_line_errors(tmp_path, tiny_model_dir, args, message):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    result = run(tmp_path / "x.png", "--caption", "A room.", "--model", tiny_model_dir, "--out", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_three_d_options_and_cameras_from_the_command_line(tmp_path, tiny_model_dir, open3d):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30), (120, 90, 60)).save(photos / name)
    (tmp_path / "cams.json").write_text(json.dumps({"a.png": {"K": [[40, 0, 19.5], [0, 40, 14.5], [0, 0, 1]]}}))
    colmap = tmp_path / "sparse"
    colmap.mkdir()
    (colmap / "cameras.txt").write_text("1 PINHOLE 80 60 90 90 40 30\n")
    (colmap / "images.txt").write_text("1 1 0 0 0 0 0 0 1 b.png\n\n")
    out = tmp_path / "out"
    result = run(
        photos, "--caption", "A wall.", "--model", tiny_model_dir, "--out", out, "--resolution", 100, "--quiet",
        "--outputs", "ply,mesh,render", "--mesh-format", "ply", "--normals", "--remove-outliers",
        "--intrinsics", tmp_path / "cams.json", "--colmap", colmap,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = read_manifest(out / "manifest.jsonl")
    assert records["a.png"]["intrinsics"]["source"] == "intrinsics-file"
    b = records["b.png"]["intrinsics"]
    assert (b["source"], b["fx"], b["cx"]) == ("colmap", 45.0, 19.5)  # halved; COLMAP's 40 is our 39.5
    assert json.loads((out / "summary.json").read_text())["default_camera"] == 0
    mesh = open3d.io.read_triangle_mesh(str(out / "a.mesh.ply"))
    assert len(mesh.triangles) > 0 and mesh.has_vertex_colors()
    assert open3d.io.read_point_cloud(str(out / "a.points.ply")).has_normals()
    assert (out / "b.render.png").is_file()
