"""`tr2m caption` and `tr2m convert --auto-caption` as users run them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tr2m_cli.cli import cli
from tr2m_cli.io.manifest import read_manifest


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(5)
    for index, name in enumerate(["a.jpg", "sub/b.png", "sub/c.jpg"]):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28 + 14 * index, 56, 3), dtype=np.uint8)).save(path)
    return folder


@pytest.fixture(scope="module")
def captioner_dir(tmp_path_factory):
    from tr2m_cli.caption.testing import save_tiny_florence2

    return save_tiny_florence2(tmp_path_factory.mktemp("captioner") / "florence2")


def test_json_output_is_read_back_by_convert_caption_file(photos, tmp_path, captioner_dir, tiny_model_dir):
    captions = tmp_path / "captions.json"
    result = run("caption", photos, "--captioner", captioner_dir, "--out", captions, "--device", "cpu", "--batch-size", 2)
    assert result.exit_code == 0, result.output
    assert "3 of 3 photos captioned in " in result.output and "captions/s" in result.output
    mapping = json.loads(captions.read_text())
    assert sorted(mapping) == ["a.jpg", "sub/b.png", "sub/c.jpg"]

    out = tmp_path / "depth"
    result = run("convert", photos, "--caption-file", captions, "--model", tiny_model_dir, "--out", out,
                 "--outputs", "tiff", "--resolution", 64, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    records = read_manifest(out / "manifest.jsonl")
    assert {key: r["caption"] for key, r in records.items()} == mapping
    assert {r["caption_source"] for r in records.values()} == {"caption-file"}


def test_convert_auto_caption_converts_a_folder_with_no_captions(photos, tmp_path, captioner_dir, tiny_model_dir):
    out = tmp_path / "depth"
    args = ["convert", photos, "--auto-caption", "--captioner", captioner_dir, "--model", tiny_model_dir,
            "--out", out, "--outputs", "tiff", "--resolution", 64, "--quiet"]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 0, result.output
    records = read_manifest(out / "manifest.jsonl")
    assert len(records) == 3 and all(r["status"] == "ok" and r["caption"] for r in records.values())
    assert {r["caption_source"] for r in records.values()} == {"generated"}
    assert {r["caption_origin"] for r in records.values()} == {str(captioner_dir.resolve())}
    assert not list(photos.rglob("*.txt"))  # generated captions are not kept unless asked

    result = run(*args, "--overwrite", "--save-captions")
    assert result.exit_code == 0, result.output
    records = read_manifest(out / "manifest.jsonl")
    for key, record in records.items():
        sidecar = (photos / key).with_suffix(".txt")
        assert sidecar.read_text().strip() == record["caption"]
    # Next time the sidecars are the captions, and `tr2m caption` has nothing left to do.
    assert "0 of 3 photos captioned, 3 already had one in " in run("caption", photos, "--captioner", captioner_dir).output


def test_without_auto_caption_photos_with_no_caption_fail_as_before(photos, tmp_path, tiny_model_dir):
    result = run("convert", photos, "--model", tiny_model_dir, "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 2 and "no caption for any of the 3 photos" in result.output


def test_a_corrupt_photo_is_reported_and_the_rest_captioned(photos, captioner_dir):
    (photos / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = run("caption", photos, "--captioner", captioner_dir, "--quiet")
    assert result.exit_code == 1
    assert "tr2m: failed: " in result.stderr and "broken.png" in result.stderr
    assert sorted(p.name for p in photos.rglob("*.txt")) == ["a.txt", "b.txt", "c.txt"]


def test_usage_errors_exit_2(photos, tmp_path, captioner_dir):
    result = run("caption", photos, "--captioner", tmp_path / "missing-captioner/")
    assert result.exit_code == 2 and "tr2m: error:" in result.output and "no such folder" in result.output
    result = run("caption", photos, "--out", tmp_path / "captions.txt")
    assert result.exit_code == 2 and ".json (a mapping) or .jsonl" in result.output
    result = run("caption", tmp_path / "nothing-here", "--captioner", captioner_dir)
    assert result.exit_code == 2 and "no such file or folder" in result.output


def test_help_and_default_captioner():
    from tr2m_cli.caption import DEFAULT_CAPTIONER

    result = run("caption", "--help")
    assert result.exit_code == 0 and "--captioner" in result.output and "--caption-root" in result.output
    assert f"[default: {DEFAULT_CAPTIONER}]" in " ".join(result.output.split())


def test_caption_offers_only_the_ray_options_it_uses():
    help_text = run("caption", "--help").output
    assert "--engine" in help_text and "--gpus-per-worker" in help_text
    assert "--decode-on-cpus" not in help_text  # convert's: captioning workers decode their own photos
