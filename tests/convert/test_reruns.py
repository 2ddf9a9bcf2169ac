"""Reruns redo exactly what is stale: per-photo fingerprints of model, caption, size, precision,
domain, output options and the photo file itself."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions, convert
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.depth_files import read_depth_tiff
from tr2m_cli.io.manifest import read_manifest
from tr2m_cli.io.preview import PreviewOptions
from tr2m_cli.model.preprocess import SizePolicy

FAST = SizePolicy(token_budget=120)


def options(**kwargs) -> ConvertOptions:
    defaults = dict(progress=False, decode_workers=1, size=FAST, captions=CaptionRules(caption="A room."), outputs=("tiff", "preview"))
    return ConvertOptions(**{**defaults, **kwargs})


def photos(folder: Path, count: int = 3, size=(24, 32)) -> Path:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture
def done(tmp_path, tiny_model):
    """A folder converted once: (photos, out)."""
    folder = photos(tmp_path / "photos")
    out = tmp_path / "out"
    first = convert([folder], out, options(), model=tiny_model)
    assert first.converted == 3
    return folder, out


def test_an_unchanged_rerun_skips_everything_and_still_names_the_model(done, tiny_model):
    folder, out = done
    again = convert([folder], out, options(), model=tiny_model)
    assert (again.converted, again.skipped, again.redone) == (0, 3, 0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["name"] == "tiny-random" and len(summary["model"]["head_sha256"]) == 64
    record = read_manifest(out / "manifest.jsonl")["p0.png"]
    assert record["settings"]["model"] == "tiny-random" and record["settings"]["head_sha256"] == summary["model"]["head_sha256"]
    _, tags = read_depth_tiff(out / "p0.depth.tiff")
    assert tags["fingerprint"] == record["fingerprint"] and tags["settings"]["caption"] == "A room."


@pytest.mark.parametrize(
    "change,changed",
    [
        (dict(captions=CaptionRules(caption="A kitchen.")), "caption"),
        (dict(size=SizePolicy(token_budget=150)), "size"),
        (dict(size=SizePolicy.fixed(56, 70)), "size"),
        (dict(captions=CaptionRules(caption="A room.", domain="surgical")), "domain"),
        (dict(preview=PreviewOptions(colormap="gray")), "outputs"),
        (dict(preview=PreviewOptions(depth_range=(0.5, 4.0))), "outputs"),
        (dict(outputs=("tiff", "preview", "npy")), "outputs"),  # a new kind: its files are missing, still a change
    ],
)
def test_changed_settings_redo_every_photo_and_say_why(done, tiny_model, change, changed):
    folder, out = done
    rerun = convert([folder], out, options(**change), model=tiny_model)
    assert (rerun.converted, rerun.skipped, rerun.redone) == (3, 0, 3)
    assert rerun.line().startswith("3 of 3 photos converted (3 redone: settings changed) in ")
    records = read_manifest(out / "manifest.jsonl")
    assert all(changed in r["redone_because"] for r in records.values())
    assert convert([folder], out, options(**change), model=tiny_model).skipped == 3  # now current


def test_another_model_redoes_the_photos_and_records_which(done, tmp_path, tiny_model_dir):
    from tr2m_cli import load_model
    from tr2m_cli.weights.load import model_identity

    folder, out = done
    other_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "other"))
    config = json.loads((other_dir / "tr2m.json").read_text())
    config["name"] = "tiny-other"
    (other_dir / "tr2m.json").write_text(json.dumps(config))
    other = load_model(other_dir, device="cpu", precision="fp32")
    rerun = convert([folder], out, options(), model=other)
    assert (rerun.converted, rerun.redone) == (3, 3)
    records = read_manifest(out / "manifest.jsonl")
    assert {r["settings"]["model"] for r in records.values()} == {"tiny-other"}
    assert all("model" in r["redone_because"] for r in records.values())
    assert records["p0.png"]["settings"]["head_sha256"] == model_identity(other_dir)["head_sha256"]


def test_a_replaced_photo_is_redone_at_its_new_size(done, tiny_model):
    folder, out = done
    Image.fromarray(np.zeros((60, 40, 3), np.uint8)).save(folder / "p1.png")
    rerun = convert([folder], out, options(), model=tiny_model)
    assert (rerun.converted, rerun.skipped, rerun.redone) == (1, 2, 1)
    depth, _ = read_depth_tiff(out / "p1.depth.tiff")
    assert depth.shape == (60, 40)
    assert read_manifest(out / "manifest.jsonl")["p1.png"]["redone_because"] == ["input_file"]


def test_a_touched_photo_counts_as_replaced(done, tiny_model):
    folder, out = done
    stat = os.stat(folder / "p2.png")
    os.utime(folder / "p2.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert convert([folder], out, options(), model=tiny_model).redone == 1


def test_millimetre_model_outputs_are_redone_in_metres_when_the_domain_is_given(tmp_path, tiny_model_dir):
    """Released weights answer in millimetres on colon scenes: outputs made without --domain
    surgical must not stay when it is given (they would be in mm under "domain": "surgical")."""
    from tr2m_cli import load_model

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "mm-model"))
    config = json.loads((folder / "tr2m.json").read_text())
    config["domain_units"] = {"surgical": "millimetres"}
    (folder / "tr2m.json").write_text(json.dumps(config))
    model = load_model(folder, device="cpu", precision="fp32")
    colon = photos(tmp_path / "colon", 1)
    caption = CaptionRules(caption="The image shows a medical scene of the colon with its tissue texture.")
    convert([colon], tmp_path / "o", options(captions=caption, outputs=("npy",)), model=model)
    before = np.load(tmp_path / "o" / "p0.depth.npy")
    surgical = CaptionRules(caption=caption.caption, domain="surgical")
    rerun = convert([colon], tmp_path / "o", options(captions=surgical, outputs=("npy",)), model=model)
    assert rerun.redone == 1
    np.testing.assert_allclose(np.load(tmp_path / "o" / "p0.depth.npy"), before / 1000, rtol=1e-5)


def test_auto_captions_are_reused_on_a_rerun_not_made_again(tmp_path, tiny_model):
    from tr2m_cli.io.captions import CaptionFallback

    folder = photos(tmp_path / "photos", 2)
    calls = []

    def generate(images):
        calls.append(len(images))
        return [f"A generated caption {i}." for i in range(len(images))]

    fallback = CaptionFallback("tiny-captioner", generate)
    no_caption = options(captions=CaptionRules())
    assert convert([folder], tmp_path / "o", no_caption, model=tiny_model, caption_fallback=fallback).converted == 2
    again = convert([folder], tmp_path / "o", no_caption, model=tiny_model, caption_fallback=fallback)
    assert (again.skipped, calls) == (2, [2])
