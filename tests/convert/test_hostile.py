"""Hostile trees and shared output folders: links planted by others, FIFOs and devices named like
photos, huge declared sizes, odd names, earlier runs' outputs, corrupt manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions, convert
from tr2m_cli.errors import OutputError
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.manifest import read_manifest
from tr2m_cli.model.preprocess import SizePolicy

FAST = SizePolicy(token_budget=120)


def options(**kwargs) -> ConvertOptions:
    defaults = dict(progress=False, decode_workers=1, size=FAST, captions=CaptionRules(caption="A room."), outputs=("tiff", "preview"))
    return ConvertOptions(**{**defaults, **kwargs})


def photo(path: Path, size=(24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(len(str(path))).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tr2m_cli", *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)


def test_earlier_outputs_inside_the_input_tree_are_never_read_as_photos(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    for name in ("a.jpg", "b.png", "sub/c.jpg"):
        photo(folder / name)
    first = convert([folder], folder / "depth", options(outputs=("tiff", "preview", "png16")), model=tiny_model)
    second = convert([folder], folder / "depth2", options(outputs=("tiff", "preview", "png16")), model=tiny_model)
    third = convert([folder], folder / "depth3", options(), model=tiny_model)
    assert first.photos == second.photos == third.photos == 3
    assert {"depth", "depth2"} <= {Path(p).name for p, _ in third.inputs_skipped}


def test_a_planted_link_in_the_output_folder_is_never_written_through(tmp_path, tiny_model):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    # The old write probe's name, the manifest's name, an output's name: all links to the victim.
    (out / f".tr2m-write-test-{os.getpid()}").symlink_to(victim)
    (out / "a.preview.png").symlink_to(victim)
    (out / "manifest.jsonl").symlink_to(victim)
    with pytest.raises(OutputError, match="manifest.jsonl: is a symbolic link"):
        convert([photo(tmp_path / "in" / "a.jpg")], out, options(), model=tiny_model)
    assert victim.read_text() == "precious\n"
    (out / "manifest.jsonl").unlink()
    summary = convert([tmp_path / "in"], out, options(), model=tiny_model)
    assert summary.converted == 1 and victim.read_text() == "precious\n"
    assert not (out / "a.preview.png").is_symlink()  # replaced by our file, not written through


def test_a_linked_sub_folder_in_the_output_folder_fails_its_photos_alone(tmp_path, tiny_model):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "kitchen").symlink_to(elsewhere)
    folder = tmp_path / "photos"
    photo(folder / "kitchen" / "a.jpg")
    photo(folder / "b.jpg")
    summary = convert([folder], out, options(), model=tiny_model)
    assert (summary.converted, summary.failed) == (1, 1)
    assert "symbolic link" in summary.failures[0][1] and not list(elsewhere.iterdir())


def test_fifos_named_like_photos_or_captions_are_skipped_and_reported_not_waited_on(tmp_path, tiny_model_dir):
    folder = tmp_path / "photos"
    photo(folder / "a.jpg")
    os.mkfifo(folder / "b.jpg")
    photo(folder / "c.jpg")
    os.mkfifo(folder / "c.txt")  # a FIFO sidecar
    done = cli("convert", folder, "--model", tiny_model_dir, "--out", tmp_path / "out", "--caption", "A room.", "--resolution", 120, "--quiet", timeout=90)
    assert done.returncode == 0, done.stderr
    assert "b.jpg" in done.stderr and "FIFO" in done.stderr and "Traceback" not in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["converted"] == 2 and [Path(s["path"]).name for s in summary["inputs_skipped"]] == ["b.jpg"]
    assert read_manifest(tmp_path / "out" / "manifest.jsonl")["c.jpg"]["caption_source"] == "option"


def test_a_sidecar_linked_to_dev_zero_is_not_read_whole(tmp_path):
    """Reading it whole never ends (MemoryError at best): a memory cap makes that fail fast."""
    folder = tmp_path / "photos"
    photo(folder / "a.jpg")
    (folder / "a.txt").symlink_to("/dev/zero")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from tr2m_cli.io.captions import CaptionResolver, CaptionRules\n"
        "from tr2m_cli.io.inputs import collect_images\n"
        "images = collect_images([sys.argv[1]])\n"
        "resolver = CaptionResolver(CaptionRules(caption='A room.'), images)\n"
        "caption = resolver.resolve(images[0])\n"
        "print(caption.source, '|', resolver.problems[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("option |") and "a.txt" in done.stdout and "regular file" in done.stdout


def test_a_photo_over_the_pixel_limit_fails_alone_before_it_is_decoded(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    photo(folder / "big.png", size=(1000, 2000))
    photo(folder / "small.png")
    summary = convert([folder], tmp_path / "out", options(max_pixels=1_000_000), model=tiny_model)
    assert (summary.converted, summary.failed) == (1, 1)
    assert "2000×1000 is 2 megapixels, over the limit of 1" in summary.failures[0][1]


def test_the_default_pixel_limit_refuses_a_tiny_png_declaring_13000_squared(tmp_path):
    import zlib

    from tr2m_cli.errors import InputError
    from tr2m_cli.io.images import read_rgb

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (13000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    with pytest.raises(InputError, match="13000×13000 is 169 megapixels, over the limit of 100"):
        read_rgb(bomb)


def test_heic_photos_are_read_with_the_plugin_and_reported_without_it(tmp_path, tiny_model, monkeypatch):
    pytest.importorskip("pillow_heif", reason="the heif extra (pillow-heif) is not installed")
    from tr2m_cli.io import images

    folder = tmp_path / "photos"
    photo(folder / "a.jpg")
    assert images.heif_available()
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(folder / "phone.heic", format="HEIF")
    summary = convert([folder], tmp_path / "out", options(), model=tiny_model)
    assert summary.converted == 2 and (tmp_path / "out" / "phone.depth.tiff").is_file()

    monkeypatch.setattr(images, "heif_available", lambda: False)
    summary = convert([folder], tmp_path / "out2", options(), model=tiny_model)
    assert summary.converted == 1
    assert summary.inputs_skipped == [(str(folder / "phone.heic"), "unreadable here: a HEIC/HEIF photo: reading it needs pillow-heif (pip install 'tr2m[heif]')")]
    assert any("phone.heic" in w and "pillow-heif" in w for w in summary.warnings)


def test_a_229_character_name_is_converted(tmp_path, tiny_model):
    name = "n" * 225 + ".jpg"
    summary = convert([photo(tmp_path / "photos" / name)], tmp_path / "out", options(outputs=("tiff", "preview", "npy")), model=tiny_model)
    assert summary.converted == 1, summary.failures
    assert (tmp_path / "out" / ("n" * 225 + ".intrinsics.json")).is_file()


def test_a_name_that_is_not_utf8_round_trips_through_the_manifest(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    raw = os.fsencode(folder) + b"/caf\xe9 \xff.jpg"
    photo(Path(os.fsdecode(raw)))
    photo(folder / "plain.jpg")
    out = tmp_path / "out"
    summary = convert([folder], out, options(), model=tiny_model)
    assert summary.converted == 2 and summary.exit_code == 0
    key = os.fsdecode(b"caf\xe9 \xff.jpg")
    records = read_manifest(out / "manifest.jsonl")
    assert key in records and records[key]["status"] == "ok"
    (out / "manifest.jsonl").read_bytes().decode("utf-8")  # valid UTF-8 on disk
    assert os.path.exists(os.fsencode(out) + b"/caf\xe9 \xff.depth.tiff")
    assert convert([folder], out, options(), model=tiny_model).skipped == 2  # the rerun finds it


def test_undecodable_characters_in_captions_do_not_stop_the_run(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    photo(folder / "a.jpg")
    photo(folder / "b.jpg")
    (tmp_path / "captions.json").write_text('{"a.jpg": "A room \\ud800 with a lone surrogate."}')
    rules = CaptionRules(caption_file=tmp_path / "captions.json", caption="A caption \udcff from a non-UTF-8 argument.")
    summary = convert([folder], tmp_path / "out", options(captions=rules), model=tiny_model)
    assert summary.converted == 2
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert records["a.jpg"]["caption"] == "A room \ufffd with a lone surrogate."
    assert records["b.jpg"]["caption"] == "A caption \ufffd from a non-UTF-8 argument."


def test_a_corrupt_manifest_is_reported_not_silently_rebuilt(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    photo(folder / "a.jpg")
    photo(folder / "b.jpg")
    out = tmp_path / "out"
    convert([folder], out, options(), model=tiny_model)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text(lines[0] + "\n{garbage\n" + lines[1] + "\n")
    again = convert([folder], out, options(), model=tiny_model)
    assert again.skipped == 2
    assert any("1 unreadable line(s)" in w for w in again.warnings)
    assert (out / "manifest.jsonl.unreadable").read_text() == "{garbage\n"
    (out / "manifest.jsonl").write_bytes(b"\x00\x01 not a manifest at all\n")
    with pytest.raises(OutputError, match="not a tr2m manifest"):
        convert([folder], out, options(), model=tiny_model)


def test_depth_with_no_finite_positive_pixel_is_a_failure_not_ok(tmp_path, tiny_model_dir):
    """A head broken after loading (or by a bug) must not produce "ok" NaN or negative metres."""
    import torch

    from tr2m_cli import load_model

    model = load_model(tiny_model_dir, device="cpu", precision="fp32")
    with torch.no_grad():
        model.head.scale_head.conv3.bias.fill_(float("nan"))
    photo(tmp_path / "photos" / "a.jpg")
    summary = convert([tmp_path / "photos"], tmp_path / "out", options(), model=model)
    assert (summary.converted, summary.failed, summary.exit_code) == (0, 1, 1)
    assert "no valid depth" in summary.failures[0][1]
    assert not (tmp_path / "out" / "a.depth.tiff").exists()
    assert read_manifest(tmp_path / "out" / "manifest.jsonl")["a.jpg"]["status"] == "failed"
