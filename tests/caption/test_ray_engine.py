"""`tr2m caption --engine ray`: the same captions, destinations and resume as on one machine
(in a private network namespace, on the tests' local Ray cluster)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tr2m_cli.caption.run import CaptionOptions, caption_photos
from tr2m_cli.cli import cli

pytestmark = pytest.mark.netns


def test_ray_writes_the_captions_the_local_run_writes_and_resumes(ray_cluster, tiny_captioner_dirs, tmp_path):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(3)
    for index, name in enumerate(["a.jpg", "sub/b.png", "sub/c.jpg", "sub/d.png"]):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28 + 7 * index, 56, 3), dtype=np.uint8)).save(path)
    (folder / "sub" / "broken.png").write_bytes(b"no photo")
    captioner = tiny_captioner_dirs["blip"]
    local = caption_photos([folder], CaptionOptions(out=tmp_path / "local.jsonl", device="cpu", progress=False), captioner=captioner)
    command = ["caption", str(folder), "--captioner", str(captioner), "--out", str(tmp_path / "ray.jsonl"), "--device", "cpu",
               "--engine", "ray", "--workers", "1,2", "--gpus-per-worker", "0.5", "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, command, catch_exceptions=False)
    assert result.exit_code == 1 and "broken.png" in result.output  # one bad photo: exit 1, the rest captioned
    assert local.captioned == 4 and local.failed == 1

    def read(path):
        return sorted((r["image"], r["caption"]) for r in map(json.loads, path.read_text().splitlines()))

    assert read(tmp_path / "ray.jsonl") == read(tmp_path / "local.jsonl")

    def counts(name):  # what each run decided and did, as its summary records it
        summary = json.loads((tmp_path / f"{name}.summary.json").read_text())
        return {k: summary[k] for k in ("photos", "captioned", "skipped", "failed", "copied", "inputs_skipped")} | {
            "failures": [f["input"] for f in summary["failures"]], "long": [c["input"] for c in summary["long_captions"]]}

    assert counts("ray") == counts("local") and counts("ray")["failures"] == ["sub/broken.png"]
    again = CliRunner().invoke(cli, command, catch_exceptions=False)
    assert again.exit_code == 1  # only the broken photo is tried again
    assert read(tmp_path / "ray.jsonl") == read(tmp_path / "local.jsonl")
