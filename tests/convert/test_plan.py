"""The plan of a conversion: rows to convert, photos done, failures decided up front, from one
listing of the output prefix and the manifest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions
from tr2m_cli.convert.plan import plan_conversion, row_job
from tr2m_cli.errors import InputError
from tr2m_cli.io import storage
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.manifest_parts import new_run_id, write_part
from tr2m_cli.jobs import fingerprint


def photo(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
    return path


def outputs(out: Path, stem: str, kinds=(".depth.tiff", ".preview.png", ".intrinsics.json")) -> None:
    for suffix in kinds:
        (out / (stem + suffix)).parent.mkdir(parents=True, exist_ok=True)
        (out / (stem + suffix)).write_bytes(b"x")


def test_rows_are_plain_strings_that_rebuild_the_photo(tmp_path, tiny_model_dir):
    photo(tmp_path / "p" / "k" / "a.jpg")
    (tmp_path / "p" / "k" / "a.txt").write_text("A kitchen.\n")
    plan = plan_conversion([tmp_path / "p"], tmp_path / "out", ConvertOptions(), model=tiny_model_dir)
    (row,) = plan.rows
    assert all(isinstance(value, str) for value in row.values())
    json.dumps(row)  # ships to any engine
    job = row_job(row)
    image, caption, made_by = job.image, job.caption, job.made_by
    assert (image.key, image.path, image.output_stem.as_posix()) == ("k/a.jpg", tmp_path / "p" / "k" / "a.jpg", "k/a")
    assert (caption.text, caption.source) == ("A kitchen.", "sidecar")
    assert made_by["settings"]["caption"] == "A kitchen." and made_by["settings"]["model"] == "tiny-random"
    assert made_by["fingerprint"] == fingerprint(made_by["settings"])


def test_done_means_current_record_and_outputs_in_one_listing(tmp_path, tiny_model_dir):
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]):
        photo(tmp_path / "p" / name, i)
    out = tmp_path / "out"
    options = ConvertOptions(captions=CaptionRules(caption="A room."))
    first = {row["input"]: row_job(row).made_by for row in plan_conversion([tmp_path / "p"], out, options, model=tiny_model_dir).rows}
    for stem in "abe":
        outputs(out, stem)  # a: current; b: no record (killed between writing and recording)
    outputs(out, "c", kinds=(".depth.tiff",))  # c: a record, but an output missing
    stale = {**first["e.jpg"]["settings"], "caption": "An older caption."}
    write_part(out, new_run_id(), [
        {"input": "a.jpg", "status": "ok", **first["a.jpg"]},
        {"input": "c.jpg", "status": "ok", **first["c.jpg"]},
        {"input": "d.jpg", "status": "failed"},
        {"input": "e.jpg", "status": "ok", "settings": stale, "fingerprint": fingerprint(stale)},  # e: made otherwise
    ])  # fmt: skip
    plan = plan_conversion([tmp_path / "p"], out, options, model=tiny_model_dir)
    assert [image.key for image in plan.done] == ["a.jpg"]
    assert [row["input"] for row in plan.rows] == ["b.jpg", "c.jpg", "d.jpg", "e.jpg"]
    assert plan.redone == {"e.jpg": ["caption"]}
    assert json.loads(plan.rows[-1]["redone_because"]) == ["caption"]
    assert (out / "manifest.jsonl").is_file()  # the killed run's part was folded in first
    everything = plan_conversion([tmp_path / "p"], out, replace(options, overwrite=True), model=tiny_model_dir)
    assert len(everything.rows) == 5 and everything.done == []


def test_photos_without_captions_fail_up_front_and_none_at_all_is_an_error(tmp_path, tiny_model_dir):
    photo(tmp_path / "p" / "a.jpg")
    photo(tmp_path / "p" / "b.jpg", 1)
    (tmp_path / "p" / "a.txt").write_text("A room.\n")
    plan = plan_conversion([tmp_path / "p"], tmp_path / "out", ConvertOptions(), model=tiny_model_dir)
    assert [row["input"] for row in plan.rows] == ["a.jpg"]
    (failure,) = plan.failures
    assert failure["input"] == "b.jpg" and failure["status"] == "failed" and "no caption for b.jpg" in failure["error"]
    (tmp_path / "p" / "a.txt").unlink()
    with pytest.raises(InputError, match="no caption for any of the 2 photos"):
        plan_conversion([tmp_path / "p"], tmp_path / "out", ConvertOptions(), model=tiny_model_dir)


def test_a_bucket_is_planned_like_a_folder(tmp_path, tiny_model_dir):
    import uuid

    bucket = storage.location(f"memory://plan-{uuid.uuid4().hex}")
    try:
        for name in ("frames/k/a.jpg", "frames/k/a.png", "frames/b.jpg"):
            storage.write_bytes(bucket / name, photo(tmp_path / "x.jpg").read_bytes())
        storage.write_text(bucket / "frames/b.txt", "A bucket photo.\n")
        storage.write_bytes(bucket / "frames/old/manifest.jsonl", b'{"input": "x.jpg", "status": "ok"}\n')
        storage.write_bytes(bucket / "frames/old/x.jpg", photo(tmp_path / "y.jpg").read_bytes())  # another run's
        plan = plan_conversion([str(bucket / "frames")], str(bucket / "out"), ConvertOptions(captions=CaptionRules(domain="indoor")),
                               model=tiny_model_dir)  # fmt: skip
        assert plan.inputs_skipped == [("old/x.jpg", "folders holding another tr2m run's outputs")]
        assert plan.rows[0]["settings"] and json.loads(plan.rows[0]["settings"])["input_file"]["bytes"] > 0
        assert [(r["input"], r["output_stem"], r["caption_source"]) for r in plan.rows] == [
            ("b.jpg", "b", "sidecar"), ("k/a.jpg", "k/a.jpg", "domain"), ("k/a.png", "k/a.png", "domain"),
        ]  # fmt: skip
        assert plan.rows[0]["path"] == f"{bucket}/frames/b.jpg"
    finally:
        storage.filesystem(bucket).rm(bucket.path, recursive=True)
