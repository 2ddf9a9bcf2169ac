"""The conversion pipeline, through its library function, with the tiny model on the CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tr2m_cli.convert import ConvertOptions, convert
from tr2m_cli.model.inference import DepthPredictor
from tr2m_cli.errors import InputError, OutputError, WeightsError
from tr2m_cli.io.captions import DOMAIN_CAPTIONS, CaptionRules
from tr2m_cli.io.depth_files import read_depth_tiff
from tr2m_cli.io.images import read_rgb
from tr2m_cli.io.inputs import Shard
from tr2m_cli.io.manifest import read_manifest
from tr2m_cli.io.pointcloud import PointCloudOptions
from tr2m_cli.model.preprocess import SizePolicy

FAST = SizePolicy(token_budget=120)  # ~11×14 patches: the tiny model in milliseconds


def options(**kwargs) -> ConvertOptions:
    defaults = dict(progress=False, decode_workers=2, size=FAST, captions=CaptionRules(caption="A room."))
    return ConvertOptions(**{**defaults, **kwargs})


def photo(path: Path, size=(48, 64), seed=0, **save) -> Path:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize(size[::-1], Image.BILINEAR).save(path, **save)
    return path


def test_examples_become_metric_depth_equal_to_predict(examples_dir, tmp_path, tiny_model):
    captions = json.loads((examples_dir / "captions.json").read_text())
    rules = CaptionRules(caption_file=examples_dir / "captions.json")
    summary = convert([examples_dir], tmp_path / "out", options(captions=rules, size=None, outputs=("tiff",)), model=tiny_model)
    assert (summary.photos, summary.converted, summary.failed, summary.exit_code) == (4, 4, 0, 0)
    for key, caption in captions.items():
        depth, metadata = read_depth_tiff(tmp_path / "out" / Path(key).with_suffix(".depth.tiff"))
        rgb = read_rgb(examples_dir / key)
        assert depth.shape == rgb.shape[:2] and metadata["caption"] == caption and metadata["unit"] == "metres"
        assert metadata["precision"] == read_manifest(tmp_path / "out" / "manifest.jsonl")[key]["precision"] == "fp32"
        # The pipeline (threads, buckets, batches of 4) gives what one call of predict gives.
        expected = tiny_model.predict(rgb, caption)
        np.testing.assert_allclose(depth, expected, rtol=2e-4, atol=1e-5)


def test_batches_group_equal_network_sizes_and_match_one_by_one(tmp_path, tiny_model, monkeypatch):
    folder = tmp_path / "mixed"
    sizes = [(48, 64), (64, 48), (48, 64), (30, 90), (64, 48), (48, 64), (30, 90)]
    for i, size in enumerate(sizes):
        photo(folder / f"p{i}.png", size, seed=i)
    batches = []
    real_run = DepthPredictor.run_batch

    def spy(self, photos):
        batches.append([p.photo.network_size for p in photos])
        return real_run(self, photos)

    monkeypatch.setattr(DepthPredictor, "run_batch", spy)
    convert([folder], tmp_path / "batched", options(batch_size=3, outputs=("npy",)), model=tiny_model)
    assert all(len(set(batch)) == 1 for batch in batches) and max(len(b) for b in batches) == 3
    batches.clear()
    convert([folder], tmp_path / "single", options(batch_size=1, outputs=("npy",)), model=tiny_model)
    assert all(len(batch) == 1 for batch in batches) and len(batches) == len(sizes)
    for i, size in enumerate(sizes):
        together = np.load(tmp_path / "batched" / f"p{i}.depth.npy")
        alone = np.load(tmp_path / "single" / f"p{i}.depth.npy")
        assert together.shape == size
        np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)


def test_huge_rotated_jpeg_is_decoded_small_and_written_upright(tmp_path, tiny_model, monkeypatch):
    from tr2m_cli.io import images

    image = Image.new("RGB", (3000, 2000), (90, 120, 150))
    exif = image.getexif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    image.save(tmp_path / "big.jpg", exif=exif, quality=80)
    decoded_sizes = []
    real = images.pil_to_rgb
    monkeypatch.setattr(images, "pil_to_rgb", lambda pil: decoded_sizes.append(pil.size) or real(pil))
    out = tmp_path / "out"
    cloud = PointCloudOptions(stride=8)
    convert([tmp_path / "big.jpg"], out, options(outputs=("tiff", "ply"), cloud=cloud), model=tiny_model)
    assert max(decoded_sizes[0]) <= 3000 // 4  # libjpeg scaled the decode; no full-size copy
    depth, _ = read_depth_tiff(out / "big.depth.tiff")
    assert depth.shape == (3000, 2000)
    record = read_manifest(out / "manifest.jsonl")["big.jpg"]
    assert record["size"] == [3000, 2000] and 0 < record["points"] <= 375 * 250


def test_one_bad_photo_fails_alone(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    good = photo(folder / "good.jpg")
    photo(folder / "also_good.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    (folder / "truncated.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.webp").write_text("not a picture")
    (folder / "dangling.jpg").symlink_to(folder / "gone.jpg")
    summary = convert([folder], tmp_path / "out", options(), model=tiny_model)
    assert (summary.converted, summary.failed, summary.exit_code) == (2, 5, 1)
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    errors = {key: r["error"] for key, r in records.items() if r["status"] == "failed"}
    assert set(errors) == {"corrupt.jpg", "truncated.jpg", "empty.png", "text.webp", "dangling.jpg"}
    assert "not an image" in errors["empty.png"] and "not an image" in errors["text.webp"]
    assert "truncated" in errors["truncated.jpg"] and "no such file" in errors["dangling.jpg"]
    assert all(key in error for key, error in errors.items())  # each names its file
    assert (tmp_path / "out" / "good.depth.tiff").is_file() and (tmp_path / "out" / "also_good.preview.png").is_file()


def test_photos_without_captions_fail_and_none_at_all_is_a_setup_error(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    photo(folder / "a.jpg")
    photo(folder / "b.jpg")
    (folder / "a.txt").write_text("A kitchen.\n")
    summary = convert([folder], tmp_path / "out", options(captions=CaptionRules()), model=tiny_model)
    assert (summary.converted, summary.failed) == (1, 1)
    assert summary.failures[0][0] == "b.jpg" and summary.failures[0][1].startswith("no caption for b.jpg")
    (folder / "a.txt").unlink()
    with pytest.raises(InputError, match="no caption for any of the 2 photos"):
        convert([folder], tmp_path / "out2", options(captions=CaptionRules()), model=tiny_model)
    assert not (tmp_path / "out2").exists()


def test_reruns_skip_finished_photos_and_overwrite_redoes_them(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    for i in range(3):
        photo(folder / f"p{i}.jpg", seed=i)
    out = tmp_path / "out"
    first = convert([folder], out, options(), model=tiny_model)
    stamp = (out / "p0.depth.tiff").stat().st_mtime_ns
    again = convert([folder], out, options(), model=tiny_model)
    assert (again.converted, again.skipped, again.exit_code) == (0, 3, 0)
    assert (out / "p0.depth.tiff").stat().st_mtime_ns == stamp
    records = read_manifest(out / "manifest.jsonl")
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 3
    assert {r["status"] for r in records.values()} == {"ok"} and first.converted == 3
    more = convert([folder], out, options(outputs=("tiff", "preview", "npy")), model=tiny_model)
    assert more.converted == 3  # a new output kind: the photos are no longer complete
    redo = convert([folder], out, options(overwrite=True), model=tiny_model)
    assert (redo.converted, redo.skipped) == (3, 0)


def test_shards_split_one_folder_into_one_output_folder(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    for i in range(9):
        photo(folder / f"d{i % 2}" / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    seen = []
    for k in (1, 2, 3):
        summary = convert([folder], out, options(shard=Shard(k, 3), outputs=("npy",)), model=tiny_model)
        assert summary.manifest.name == f"manifest-{k}-of-3.jsonl"
        seen += list(read_manifest(summary.manifest))
    assert sorted(seen) == sorted(f"d{i % 2}/p{i}.png" for i in range(9))
    assert len(list(out.rglob("*.depth.npy"))) == 9


def test_out_of_memory_halves_the_batch_and_a_photo_too_big_alone_fails(tmp_path, tiny_model, monkeypatch, capsys):
    folder = tmp_path / "photos"
    for i in range(6):
        photo(folder / f"p{i}.png", seed=i)
    real_forward = DepthPredictor._forward

    def forward(self, photos):
        if len(photos) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(self, photos)

    monkeypatch.setattr(DepthPredictor, "_forward", forward)
    summary = convert([folder], tmp_path / "out", options(batch_size=4, progress=True, outputs=("npy",)), model=tiny_model)
    assert (summary.converted, summary.failed) == (6, 0)
    assert "out of memory: continuing with batches of" in capsys.readouterr().err

    def never_fits(self, photos):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(DepthPredictor, "_forward", never_fits)
    summary = convert([folder], tmp_path / "out2", options(batch_size=2, outputs=("npy",)), model=tiny_model)
    assert summary.failed == 6 and "out of memory at network size" in summary.failures[0][1]


def test_surgical_domain_converts_millimetre_models_to_metres(tmp_path, tiny_model_dir):
    from tr2m_cli import load_model

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "mm-model"))
    config = json.loads((folder / "tr2m.json").read_text())
    config["domain_units"] = {"surgical": "millimetres"}
    (folder / "tr2m.json").write_text(json.dumps(config))
    model = load_model(folder, device="cpu", precision="fp32")
    image = photo(tmp_path / "colon" / "frame.png")
    surgical = convert([image], tmp_path / "s", options(captions=CaptionRules(domain="surgical"), outputs=("npy",)), model=model)
    plain = convert([image], tmp_path / "p", options(captions=CaptionRules(caption=DOMAIN_CAPTIONS["surgical"]), outputs=("npy",)), model=model)
    assert surgical.converted == plain.converted == 1
    np.testing.assert_allclose(np.load(tmp_path / "s" / "frame.depth.npy"), np.load(tmp_path / "p" / "frame.depth.npy") / 1000, rtol=1e-5)
    assert read_manifest(tmp_path / "s" / "manifest.jsonl")["frame.png"]["caption_source"] == "domain"


def test_outputs_written_inside_the_input_folder_are_never_taken_as_photos(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    photo(folder / "a.jpg")
    for out in (folder / "depth", folder):  # a sub-folder, and beside the photos themselves
        convert([folder], out, options(outputs=("preview", "png16")), model=tiny_model)
        again = convert([folder], out, options(outputs=("preview", "png16")), model=tiny_model)
        assert (again.photos, again.skipped) == (1, 1)


def test_long_captions_are_reported(tmp_path, tiny_model, capsys):
    image = photo(tmp_path / "a.jpg")
    long = "A very long description of a kitchen " * 4
    convert([image], tmp_path / "out", options(captions=CaptionRules(caption=long)), model=tiny_model)
    record = read_manifest(tmp_path / "out" / "manifest.jsonl")["a.jpg"]
    assert record["caption_tokens"] > 77
    assert "longer than the text encoder's 77 tokens" in capsys.readouterr().err


def test_setup_errors_write_nothing(tmp_path, tiny_model):
    image = photo(tmp_path / "a.jpg")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="missing.jpg: no such file"):
        convert([tmp_path / "missing.jpg"], tmp_path / "out", options(), model=tiny_model)
    with pytest.raises(InputError, match="no photos found"):
        convert([tmp_path / "file"], tmp_path / "out", options(), model=tiny_model)
    with pytest.raises(OutputError, match="is a file"):
        convert([image], tmp_path / "file" / "out", options(), model=tiny_model)
    with pytest.raises(OutputError, match="cannot be written"):
        convert([image], "/proc/tr2m-cannot-be-here", options(), model=tiny_model)
    with pytest.raises(WeightsError):
        convert([image], tmp_path / "out", options(), model="tr2m-official")  # offline, not cached
    assert not (tmp_path / "out").exists() and not Path("/proc/tr2m-cannot-be-here").exists()


def test_ctrl_c_keeps_finished_photos_and_a_rerun_completes_the_rest(tmp_path, tiny_model, monkeypatch):
    folder = tmp_path / "photos"
    for i in range(6):
        photo(folder / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    real_run = DepthPredictor.run_batch
    calls = []

    def interrupted(self, photos):
        calls.append(len(photos))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run(self, photos)

    monkeypatch.setattr(DepthPredictor, "run_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert([folder], out, options(batch_size=1, outputs=("tiff",)), model=tiny_model)
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
    assert len(read_manifest(out / "manifest.jsonl")) == 2 and not list(out.rglob(".tr2m-tmp-*"))
    monkeypatch.setattr(DepthPredictor, "run_batch", real_run)
    rest = convert([folder], out, options(batch_size=1, outputs=("tiff",)), model=tiny_model)
    assert (rest.converted, rest.skipped) == (4, 2)
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6


def test_object_store_inputs_and_outputs_keep_the_local_layout(tmp_path, tiny_model, memory_bucket):
    from tr2m_cli.io import storage

    folder = tmp_path / "photos"
    for i, name in enumerate(["a.jpg", "kitchen/b.png", "kitchen/b.jpg", "kitchen/deep/c.png"]):
        photo(folder / name, seed=i)
    (folder / "kitchen" / "c-caption.txt").write_text("ignored: not a photo's sidecar\n")
    for path in folder.rglob("*"):
        if path.is_file():
            storage.write_bytes(storage.join(memory_bucket, "photos/" + path.relative_to(folder).as_posix()), path.read_bytes())
    storage.write_text(storage.join(memory_bucket, "captions.json"), json.dumps({"kitchen/deep/c.png": "A deep kitchen."}))
    rules = CaptionRules(caption_file=str(memory_bucket / "captions.json"), caption="A room.")
    chosen = options(captions=rules, outputs=("tiff", "preview"))

    local = convert([folder], tmp_path / "local", chosen, model=tiny_model)
    remote = convert([str(memory_bucket / "photos")], str(memory_bucket / "depth"), chosen, model=tiny_model)
    assert (remote.converted, remote.failed, local.converted) == (4, 0, 4)
    local_keys = [info.key for info in storage.list_files(tmp_path / "local")]  # (not its lock files)
    remote_keys = [info.key for info in storage.list_files(memory_bucket / "depth", hidden=True)]
    assert remote_keys == local_keys  # the same names, no temporaries, no manifest parts left
    assert "manifest.jsonl" in remote_keys and "summary.json" in remote_keys
    records = [json.loads(line) for line in storage.read_bytes(memory_bucket / "depth" / "manifest.jsonl").decode().splitlines()]
    assert [r["input"] for r in records] == ["a.jpg", "kitchen/b.jpg", "kitchen/b.png", "kitchen/deep/c.png"]
    assert records[-1]["caption"] == "A deep kitchen." and records[-1]["caption_source"] == "caption-file"
    with storage.staged_write(tmp_path / "copy.tiff") as temp:
        temp.write_bytes(storage.read_bytes(memory_bucket / "depth" / "kitchen" / "deep" / "c.depth.tiff"))
    depth, tags = read_depth_tiff(tmp_path / "copy.tiff")
    expected, expected_tags = read_depth_tiff(tmp_path / "local" / "kitchen" / "deep" / "c.depth.tiff")
    assert tags["caption"] == expected_tags["caption"] == "A deep kitchen." and tags["unit"] == "metres"
    np.testing.assert_allclose(depth, expected, rtol=1e-6)

    again = convert([str(memory_bucket / "photos")], str(memory_bucket / "depth"), chosen, model=tiny_model)
    assert (again.converted, again.skipped) == (0, 4)
