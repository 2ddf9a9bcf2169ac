"""`caption_photos`: folders in, captions out where `convert` reads them; resume, overwrite,
shards, a corrupt photo, long captions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.caption.run import CaptionOptions, caption_photos
from tr2m_cli.errors import InputError, OutputError
from tr2m_cli.io.captions import CaptionResolver, CaptionRules, caption_root_path, sidecar_path
from tr2m_cli.io.inputs import Shard, collect_images

NAMES = ["kitchen.jpg", "rooms/office.png", "rooms/deep/lab.jpeg", "street.webp"]


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(3)
    for index, name in enumerate(NAMES):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (30 + 9 * index, 44, 3), dtype=np.uint8)).save(path)
    (folder / "notes.md").write_text("not a photo")
    return folder


def quiet(**options) -> CaptionOptions:
    return CaptionOptions(device="cpu", batch_size=3, progress=False, **options)


def resolved(folder, **rules):
    images = collect_images([folder])
    return {image.key: caption for image, caption in zip(images, CaptionResolver(CaptionRules(**rules), images).resolve_all(images))}


def test_sidecars_are_written_where_convert_reads_them(photo_dir, tiny_captioner_dirs):
    summary = caption_photos([photo_dir], quiet(), captioner=tiny_captioner_dirs["florence2"])
    assert (summary.photos, summary.captioned, summary.skipped, summary.failed, summary.exit_code) == (4, 4, 0, 0, 0)
    assert summary.captioner == str(tiny_captioner_dirs["florence2"].resolve())
    for image in collect_images([photo_dir]):
        text = sidecar_path(image).read_text(encoding="utf-8")
        assert text.endswith("\n") and text.count("\n") == 1 and text.strip()
    found = resolved(photo_dir)
    assert sorted(found) == sorted(NAMES)
    assert all(caption.source == "sidecar" for caption in found.values())
    assert (photo_dir / "rooms" / "deep" / "lab.txt").is_file() and not (photo_dir / "notes.txt").exists()


def test_existing_captions_are_kept_and_a_rerun_resumes(photo_dir, tiny_captioner_dirs):
    own = photo_dir / "rooms" / "office.txt"
    own.write_text("My own caption of the office.\n")
    first = caption_photos([photo_dir], quiet(), captioner=tiny_captioner_dirs["blip"])
    assert (first.captioned, first.skipped) == (3, 1)
    assert own.read_text() == "My own caption of the office.\n"
    written = {p: p.read_text() for p in photo_dir.rglob("*.txt")}

    again = caption_photos([photo_dir], quiet(), captioner=tiny_captioner_dirs["blip"])
    assert (again.captioned, again.skipped, again.exit_code) == (0, 4, 0)
    assert again.captioner == ""  # nothing to do: the captioner was not even loaded
    assert {p: p.read_text() for p in photo_dir.rglob("*.txt")} == written

    redo = caption_photos([photo_dir], quiet(overwrite=True), captioner=tiny_captioner_dirs["blip"])
    assert (redo.captioned, redo.skipped) == (4, 0)
    assert own.read_text() != "My own caption of the office.\n"


def test_caption_file_outputs_read_back_by_convert_rules(photo_dir, tmp_path, tiny_captioner_dirs):
    for name in ("captions.json", "captions.jsonl"):
        out = tmp_path / name
        summary = caption_photos([photo_dir], quiet(out=out), captioner=tiny_captioner_dirs["llava_next"])
        assert summary.captioned == 4 and summary.destination == str(out)
        assert not list(photo_dir.rglob("*.txt"))  # no sidecars when writing a file
        found = resolved(photo_dir, caption_file=out, sidecars=False)
        assert all(c.source == "caption-file" for c in found.values()) and sorted(found) == sorted(NAMES)
        if name.endswith(".json"):
            mapping = json.loads(out.read_text())
            assert sorted(mapping) == sorted(NAMES)
            assert {k: found[k].text for k in NAMES} == mapping
    # A second run keeps the file's entries and adds none.
    again = caption_photos([photo_dir], quiet(out=tmp_path / "captions.json"), captioner=tiny_captioner_dirs["blip"])
    assert (again.captioned, again.skipped) == (0, 4)


def test_caption_root_tree(photo_dir, tmp_path, tiny_captioner_dirs):
    root = tmp_path / "caption-tree"
    caption_photos([photo_dir], quiet(caption_root=root), captioner=tiny_captioner_dirs["blip"])
    for image in collect_images([photo_dir]):
        assert caption_root_path(image, root).is_file()
    found = resolved(photo_dir, caption_root=root)
    assert all(c.source == "caption-root" for c in found.values())


def test_a_corrupt_photo_is_reported_and_the_rest_captioned(photo_dir, tiny_captioner_dirs):
    (photo_dir / "rooms" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    lines = []
    summary = caption_photos([photo_dir], quiet(), captioner=tiny_captioner_dirs["blip"], report=lines.append)
    assert (summary.captioned, summary.failed, summary.exit_code) == (4, 1, 1)
    assert summary.failures[0][0] == "rooms/broken.jpg"
    assert any(line.startswith("tr2m: failed: ") and "broken.jpg" in line for line in lines)
    assert not (photo_dir / "rooms" / "broken.txt").exists()
    assert summary.line().startswith("4 of 5 photos captioned, 1 failed in ")


def test_shards_write_their_own_files_and_cover_every_photo_once(photo_dir, tmp_path, tiny_captioner_dirs):
    keys = []
    for index in (1, 2, 3):
        caption_photos([photo_dir], quiet(out=tmp_path / "caps.jsonl", shard=Shard(index, 3)), captioner=tiny_captioner_dirs["blip"])
        path = tmp_path / f"caps-{index}-of-3.jsonl"
        keys += [json.loads(line)["image"] for line in path.read_text().splitlines()] if path.exists() else []
    assert sorted(keys) == sorted(NAMES)


def test_long_captions_are_reported(photo_dir, tiny_captioner_dirs):
    lines = []
    summary = caption_photos(
        [photo_dir], quiet(), captioner=tiny_captioner_dirs["blip"], token_counter=lambda c: [80] * len(c), report=lines.append
    )
    assert len(summary.long_captions) == 4 and "4 longer than CLIP reads" in summary.line()
    assert any("caption is 80 CLIP tokens; the text encoder reads the first 77" in line for line in lines)


def test_setup_errors_before_any_work(photo_dir, tmp_path, tiny_captioner_dirs):
    with pytest.raises(InputError, match="either --out FILE or --caption-root DIR"):
        CaptionOptions(out=tmp_path / "a.json", caption_root=tmp_path / "t")
    with pytest.raises(InputError, match=r"ends in .json \(a mapping\) or .jsonl"):
        CaptionOptions(out=tmp_path / "a.txt")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        caption_photos([photo_dir], quiet(caption_root=blocker), captioner=tiny_captioner_dirs["blip"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no photos found"):
        caption_photos([tmp_path / "empty"], quiet())
    broken = tmp_path / "bad.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        caption_photos([photo_dir], quiet(out=broken), captioner=tiny_captioner_dirs["blip"])
    assert not list(photo_dir.rglob("*.txt"))


def test_a_captions_file_is_written_complete_even_when_every_photo_has_a_sidecar(photo_dir, tmp_path, tiny_captioner_dirs):
    for image in collect_images([photo_dir]):
        sidecar_path(image).write_text(f"My own caption of {image.path.stem}.\n")
    out = tmp_path / "caps.json"
    summary = caption_photos([photo_dir], quiet(out=out), captioner=tiny_captioner_dirs["blip"])
    assert (summary.captioned, summary.skipped, summary.copied) == (0, 4, 4)
    assert json.loads(out.read_text()) == {key: f"My own caption of {key.split('/')[-1].split('.')[0]}." for key in NAMES}
    found = resolved(photo_dir, caption_file=out, sidecars=False)  # the next documented step works
    assert sorted(found) == sorted(NAMES)


def test_the_summary_is_written_beside_the_captions(photo_dir, tmp_path, tiny_captioner_dirs):
    caption_photos([photo_dir], quiet(out=tmp_path / "caps.jsonl"), captioner=tiny_captioner_dirs["blip"])
    summary = json.loads((tmp_path / "caps.summary.json").read_text())
    assert summary["command"] == "caption" and summary["captioned"] == 4 and summary["exit_code"] == 0
    assert summary["options"]["batch_size"] == 3 and summary["options"]["out"] == str(tmp_path / "caps.jsonl")
    assert summary["command_line"] and summary["model"]["name"]
    caption_photos([photo_dir], quiet(), captioner=tiny_captioner_dirs["blip"])
    assert json.loads((photo_dir / "tr2m-caption-summary.json").read_text())["captioned"] == 4


def test_names_that_are_not_utf8_keep_their_captions_in_a_captions_file(tmp_path, tiny_captioner_dirs):
    import os

    folder = tmp_path / "photos"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(os.fsdecode(raw))
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / "plain.png")
    out = tmp_path / "caps.json"
    summary = caption_photos([folder], quiet(out=out), captioner=tiny_captioner_dirs["blip"])
    assert summary.captioned == 2 and summary.exit_code == 0
    out.read_bytes().decode("utf-8")
    found = resolved(folder, caption_file=out, sidecars=False)
    assert sorted(found) == sorted([os.fsdecode(b"caf\xe9.png"), "plain.png"])


def test_captions_of_a_bucket_go_to_a_captions_file_in_the_bucket(photo_dir, tiny_captioners, tiny_model, tmp_path):
    """memory:// stands in for s3:// here (S3 itself: the netns tests)."""
    import uuid

    from tr2m_cli.convert import ConvertOptions, convert
    from tr2m_cli.io import storage

    bucket = storage.location(f"memory://captions-{uuid.uuid4().hex}")
    try:
        for path in photo_dir.rglob("*"):
            if path.is_file():
                storage.write_bytes(bucket / ("frames/" + path.relative_to(photo_dir).as_posix()), path.read_bytes())
        out = f"{bucket}/captions.jsonl"
        first = caption_photos([f"{bucket}/frames"], quiet(out=out), captioner=tiny_captioners["blip"])
        assert (first.captioned, first.failed) == (len(NAMES), 0)
        lines = [json.loads(line) for line in storage.read_bytes(storage.location(out)).decode().splitlines()]
        assert sorted(line["image"] for line in lines) == sorted(NAMES)
        again = caption_photos([f"{bucket}/frames"], quiet(out=out), captioner=tiny_captioners["blip"])
        assert (again.captioned, again.skipped) == (0, len(NAMES))
        summary = convert([f"{bucket}/frames"], f"{bucket}/depth", ConvertOptions(
            captions=CaptionRules(caption_file=out), outputs=("npy",), device="cpu", progress=False), model=tiny_model)
        assert (summary.converted, summary.failed) == (len(NAMES), 0)
        records = [json.loads(r) for r in storage.read_bytes(bucket / "depth/manifest.jsonl").decode().splitlines()]
        assert {r["caption_source"] for r in records} == {"caption-file"}
    finally:
        storage.filesystem(bucket).rm(bucket.path, recursive=True)
