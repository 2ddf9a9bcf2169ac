"""PhotoConverter, the piece every engine runs: batches of plan rows in, one record per row out,
never an exception for one photo; decode_rows, the optional CPU stage ahead of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions
from tr2m_cli.convert.plan import plan_conversion
from tr2m_cli.convert.worker import PhotoConverter, decode_rows
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.manifest_parts import PARTS_FOLDER, iter_manifest, merge_manifest
from tr2m_cli.model.preprocess import SizePolicy
from tr2m_cli.testing import make_tiny_model_folder


@pytest.fixture
def plan(tmp_path):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for i, size in enumerate([(30, 40), (40, 30), (30, 40)]):
        path = folder / f"p{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    (folder / "broken.png").write_bytes(b"not a png")
    options = ConvertOptions(size=SizePolicy(token_budget=80), device="cpu", precision="fp32", progress=False,
                             outputs=("tiff", "npy"), captions=CaptionRules(caption="A room."))  # fmt: skip
    return plan_conversion([folder], tmp_path / "out", options, model=make_tiny_model_folder(tmp_path / "tiny")), options


def test_a_batch_of_rows_becomes_records_and_one_manifest_part(plan, tiny_model, single_thread):
    plan, options = plan
    converter = PhotoConverter(plan.out, options, model=tiny_model, run_id="run-1")
    columns = {name: np.array([row[name] for row in plan.rows], dtype=object) for name in plan.rows[0]}
    result = converter(columns)  # Ray Data and Daft pass columns
    records = [json.loads(text) for text in result["record"]]
    assert [r["input"] for r in records] == ["broken.png", "p0.png", "p1.png", "p2.png"]
    assert list(result["status"]) == ["failed", "ok", "ok", "ok"]
    assert "broken.png: not an image" in records[0]["error"]
    depth = np.load(plan.out / "p1.depth.npy")
    assert depth.shape == (40, 30) and np.isfinite(depth).all() and records[2]["unit"] == "metres"
    (part,) = (plan.out / PARTS_FOLDER / "manifest.jsonl").iterdir()
    assert part.name.startswith("run-1-") and [json.loads(line)["input"] for line in part.read_text().splitlines()] == [
        "broken.png", "p0.png", "p1.png", "p2.png"]  # fmt: skip
    merge_manifest(plan.out)
    assert [r["status"] for r in iter_manifest(plan.out / "manifest.jsonl")] == ["failed", "ok", "ok", "ok"]


def test_decoded_rows_give_the_same_records_and_depth(plan, tiny_model, single_thread, tmp_path):
    plan, options = plan
    direct = PhotoConverter(tmp_path / "direct", options, model=tiny_model, write_parts=False)
    staged = PhotoConverter(tmp_path / "staged", options, model=tiny_model, write_parts=False)
    first = direct.convert_rows(plan.rows)  # a list of dicts works too
    decoded = decode_rows(plan.rows, options=options)
    assert decoded["decode_error"][0] and not any(decoded["decode_error"][1:])
    second = staged(decoded)
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "finished")}  # noqa: E731
    assert [strip(r) for r in first] == [strip(json.loads(t)) for t in second["record"]]
    for i in range(3):
        np.testing.assert_allclose(np.load(tmp_path / "staged" / f"p{i}.depth.npy"), np.load(tmp_path / "direct" / f"p{i}.depth.npy"), rtol=1e-6)


@pytest.mark.cluster_extras
def test_pandas_batches_are_rows_too(plan, tiny_model, single_thread):
    pandas = pytest.importorskip("pandas")
    plan, options = plan
    result = PhotoConverter(plan.out, options, model=tiny_model, write_parts=False)(pandas.DataFrame(plan.rows[1:2]))
    assert list(result["status"]) == ["ok"]


def test_rows_planned_for_another_precision_fail_instead_of_being_mislabelled(plan, tiny_model, single_thread, tmp_path):
    plan, options = plan  # the tiny model runs in fp32; a driver that resolved "auto" to bf16 made these rows
    converter = PhotoConverter(tmp_path / "bf16-plan", options, model=tiny_model, write_parts=False)
    rows = [{**row, "settings": row["settings"].replace('"precision": "fp32"', '"precision": "bf16"')} for row in plan.rows]
    records = converter.convert_rows(rows)
    assert [r["status"] for r in records] == ["failed"] * 4
    assert "p1.png: planned for bf16 but this worker runs in fp32" in records[2]["error"]
    assert not list((tmp_path / "bf16-plan").glob("*.npy"))  # nothing written under the wrong label
    assert [r["status"] for r in converter.convert_rows(plan.rows)] == ["failed", "ok", "ok", "ok"]
