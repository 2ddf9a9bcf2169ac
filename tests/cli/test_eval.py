"""`tr2m eval` end to end on the nine tiny native-layout datasets with the tiny model."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tr2m_cli.cli import cli
from tr2m_cli.data import DATASET_NAMES


pytestmark = pytest.mark.usefixtures("single_thread")


def _run(*args):
    return CliRunner().invoke(cli, ["eval", *map(str, args)])


def test_all_nine_sets_write_json_csv_and_the_papers_table(tiny_data_root, tiny_model_dir, tmp_path):
    root, written = tiny_data_root
    out = tmp_path / "out"
    result = _run(
        "--datasets", "all", "--zero-shot", "all", "--data-root", root, "--captions", root / "captions",
        "--model", tiny_model_dir, "--device", "cpu", "--input-size", "42x56", "--limit", "1",
        "--out", out, "--save-predictions", "--previews", "1", "-q",
    )
    assert result.exit_code == 0, result.output
    output = result.output
    # The protocol is printed first, per set, with the override applied.
    assert "nyu: test split, 1 of 2 images" in output and "crop eigen (rows 45:471, cols 41:601)" in output
    assert "KITTI benchmark crop 352x1216 of the photo and ground truth first" in output and "network input 42x56" in output
    # The table: paper layout with published numbers and differences.
    assert "NYUv2 (first 1 of 2)" in output and "0.954" in output and "2.328" in output and "ours − paper" in output
    assert "SUN RGB-D (first 1 of 2) †" in output and "0.451" in output
    # Every row ran a protocol other than the published one (the input size, --limit): marked, and said why.
    assert "NYUv2: input size 42x56 instead of 434x560; only the first 1 of 2 images." in output
    assert "VOID (first 1 of 2)" in output and "0.899" in output and "2.952" in output  # the appendix rows
    document = json.loads((out / "results.json").read_text())
    assert list(document["datasets"]) == list(DATASET_NAMES)
    nyu = document["datasets"]["nyu"]
    assert nyu["protocol"]["crop"] == "eigen" and nyu["protocol"]["input_size"] == [42, 56] and nyu["protocol"]["units"] == "metres"
    assert nyu["images_in_split"] == 2 and nyu["images_run"] == 1 and nyu["paper"]["d1"] == 0.954
    assert set(nyu["means"]) >= {"d1", "abs_rel", "rmse", "silog"} and nyu["difference_from_paper"]["d1"] == pytest.approx(nyu["means"]["d1"] - 0.954)
    assert document["model"]["name"] == "tiny-random" and len(document["model"]["head_sha256"]) == 64
    assert document["datasets"]["c3vd"]["protocol"]["domain"] == "surgical"
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert [row["dataset"] for row in rows] == list(DATASET_NAMES)
    assert rows[0]["key"] == written["nyu"].keys[0] and rows[0]["caption"] == written["nyu"].captions[written["nyu"].keys[0]][0]
    assert float(rows[0]["abs_rel"]) == pytest.approx(document["datasets"]["nyu"]["means"]["abs_rel"], rel=1e-5)
    table = (out / "table.txt").read_text()
    assert table.startswith("In-domain") and "† Protocol differs" in table
    c3vd = document["datasets"]["c3vd"]  # the paper prints C3VD's RMSE in millimetres
    assert c3vd["paper"]["rmse"] == 2.952 and "millimetres" in c3vd["paper_units"] and "appendix" in c3vd["paper_citation"]
    assert c3vd["difference_from_paper"]["rmse"] == pytest.approx(c3vd["means"]["rmse"] * 1000 - 2.952)
    assert document["datasets"]["void"]["difference_from_paper"]["rmse"] == pytest.approx(
        document["datasets"]["void"]["means"]["rmse"] - 0.205
    )
    assert (out / "predictions" / "kitti" / f"{written['kitti'].keys[0]}.npy").is_file()
    assert (out / "previews" / "simcol" / f"{written['simcol'].keys[0]}.png").is_file()


def test_all_skips_absent_sets_with_a_notice(tiny_data_root, tiny_model_dir, tmp_path):
    from tr2m_cli.data.fixtures import write_caption_mapping

    root, written = tiny_data_root
    mapping = write_caption_mapping(tmp_path / "ibims.json", written["ibims"])
    mapping.write_text(mapping.read_text().replace("A tiny test scene", "Mapped"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "ibims").symlink_to(root / "ibims", target_is_directory=True)
    result = _run(
        "--zero-shot", "all", "--data-root", data, "--captions", root / "captions", "--dataset-captions", f"iBims-1={mapping}", "--model", tiny_model_dir,
        "--device", "cpu", "--input-size", "28x28", "--out", tmp_path / "out", "-q",
    )
    assert result.exit_code == 0, result.output
    assert "skipping sunrgbd" in result.output and "skipping simcol" in result.output
    document = json.loads((tmp_path / "out/results.json").read_text())
    assert list(document["datasets"]) == ["ibims"] and len(document["skipped_datasets"]) == 4  # zero-shot all
    table = (tmp_path / "out/table.txt").read_text()  # the table says which sets were not evaluated
    assert "Not evaluated: sunrgbd: no folder" in table and "simcol: no folder" in table
    assert "Mapped number 0." in (tmp_path / "out/per_image.csv").read_text()


def test_kitti_full_ground_truth_flag(tiny_data_root, tiny_model_dir, tmp_path):
    root, _ = tiny_data_root
    result = _run(
        "--datasets", "kitti", "--data-root", root, "--captions", root / "captions", "--model", tiny_model_dir,
        "--device", "cpu", "--input-size", "28x98", "--full-ground-truth", "--out", tmp_path, "-q", "--save-predictions",
    )
    assert result.exit_code == 0, result.output
    assert "photo (ground truth kept whole)" in result.output
    assert json.loads((tmp_path / "results.json").read_text())["datasets"]["kitti"]["protocol"]["crop_ground_truth"] is False


def test_user_errors_are_one_line(tiny_data_root, tmp_path):
    root, _ = tiny_data_root
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in (
        (["--zero-shot", "all", "--data-root", empty], "none of the selected datasets was found"),
        (["--datasets", "nyu", "--data-root", empty], "pass its root (--nyu-root DIR)"),
        (["--datasets", "nyu", "--nyu-root", root / "kitti"], "no nyu test samples found; expected official_splits/test"),
        (["--datasets", "nyu3", "--data-root", root], "unknown dataset 'nyu3'"),
        (["--zero-shot", "sun", "--data-root", empty, "--input-size", "100x100"], "multiples of 14"),
            (["--zero-shot", "sun", "--data-root", root], "sunrgbd: no captions: pass captions="),
        (["--datasets", "sun", "--split", "train", "--data-root", root], "only a 'test' split"),
    ):
        result = _run(*args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert lines[-1].startswith("tr2m: error: ") and message in lines[-1], (args, result.output)
        assert "Traceback" not in result.output
    result = _run("--data-root", root)
    assert result.exit_code == 2 and "name the datasets" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _run("--datasets", "nyu", "--data-root", root, "--captions", root / "captions", "--out", blocker / "out")
    assert result.exit_code == 2 and "cannot write results here" in result.output.strip().splitlines()[-1]


def test_names_after_an_option_are_its_values():
    from tr2m_cli.cli.eval import eval_command

    ctx = eval_command.make_context("eval", ["--datasets", "nyu", "kitti", "--zero-shot", "sun", "ibims,diode", "--limit", "3", "--datasets", "void"])
    assert ctx.params["in_domain"] == ("nyu", "kitti", "void") and ctx.params["zero_shot"] == ("sun", "ibims", "diode")
    assert ctx.params["limit"] == 3


def test_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom tr2m_cli.cli import cli\n"
        "r = CliRunner().invoke(cli, ['eval', '--help']); assert r.exit_code == 0, r.output\n"
        "assert '--zero-shot' in r.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'numpy', 'open3d', 'h5py') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _copy_sets(root, tmp_path, *names):
    import shutil

    data = tmp_path / "data"
    for name in names:
        shutil.copytree(root / name, data / name)
    return data


def test_missing_and_broken_files_are_failed_rows_and_the_others_are_scored(tiny_data_root, tiny_model_dir, tmp_path, monkeypatch):
    root, written = tiny_data_root
    data = _copy_sets(root, tmp_path, "nyu", "c3vd")
    missing = data / "c3vd" / written["c3vd"].keys[1].replace("_color", "_depth.tiff")
    missing.unlink()  # the reference (and tr2m before) dropped this frame: "1 image", exit 0
    broken = data / "nyu/official_splits/test" / written["nyu"].keys[0].replace("rgb_", "sync_depth_")
    broken = broken.with_suffix(".png")
    broken.write_bytes(b"not a png at all")  # found only when read
    args = ["--datasets", "nyu", "c3vd", "--data-root", data, "--captions", root / "captions", "--model", tiny_model_dir,
            "--device", "cpu", "--input-size", "28x42", "-q"]  # fmt: skip

    from tr2m_cli.errors import WeightsError
    from tr2m_cli.weights import load as loading

    def no_model(*args, **kwargs):
        raise WeightsError("model not loaded in this test")

    monkeypatch.setattr(loading, "load_model", no_model)
    result = _run(*args, "--out", tmp_path / "first")
    assert result.exit_code == 2 and "model not loaded" in result.output
    assert "c3vd: 1 of 2 samples cannot be read" in result.output and f"missing depth file {missing}" in result.output
    monkeypatch.undo()

    out = tmp_path / "out"
    result = _run(*args, "--out", out)
    assert result.exit_code == 1, result.output
    assert "NYUv2 (1 of 2 scored)" in result.output and "C3VD (1 of 2 scored)" in result.output
    assert "2 image(s) could not be scored" in result.output
    rows = {row["key"]: row for row in csv.DictReader((out / "per_image.csv").open())}
    assert len(rows) == 4 and rows[written["c3vd"].keys[1]]["status"] == "failed"
    assert str(missing) in rows[written["c3vd"].keys[1]]["problem"] and rows[written["c3vd"].keys[0]]["status"] == "scored"
    assert "unreadable depth image" in rows[written["nyu"].keys[0]]["problem"] and rows[written["nyu"].keys[0]]["abs_rel"] == ""
    document = json.loads((out / "results.json").read_text())
    assert document["images_failed"] == 2
    c3vd = document["datasets"]["c3vd"]
    assert c3vd["images_in_means"] == 1 and c3vd["images_failed"] == 1 and c3vd["images_in_split"] == 2
    assert c3vd["flagged_images"] == [{"key": written["c3vd"].keys[1], "status": "failed", "problem": rows[written["c3vd"].keys[1]]["problem"]}]
    assert c3vd["means"]["abs_rel"] == pytest.approx(float(rows[written["c3vd"].keys[0]]["abs_rel"]), rel=1e-5)


def test_match_reference_feeds_ibims_and_diode_as_the_authors_code(tiny_data_root, tiny_model_dir, tmp_path):
    root, _ = tiny_data_root
    args = ["--zero-shot", "ibims", "diode", "--data-root", root, "--captions", root / "captions", "--model", tiny_model_dir,
            "--device", "cpu", "--input-size", "28x28", "-q"]  # fmt: skip
    ours, theirs = _run(*args, "--out", tmp_path / "ours"), _run(*args, "--match-reference", "--out", tmp_path / "theirs")
    assert ours.exit_code == 0 and theirs.exit_code == 0, (ours.output, theirs.output)
    assert "photos ImageNet-normalised" in ours.output and "validity mask applied" in ours.output
    assert "photos ImageNet-normalised" not in theirs.output and "validity mask applied" not in theirs.output
    assert "photo not ImageNet-normalised" in theirs.output  # the protocol line says it too
    documents = [json.loads((tmp_path / name / "results.json").read_text()) for name in ("ours", "theirs")]
    assert documents[1]["datasets"]["ibims"]["protocol"]["normalize"] is False
    assert documents[0]["datasets"]["ibims"]["means"] != documents[1]["datasets"]["ibims"]["means"]
    pixels = [
        [int(row["valid_pixels"]) for row in csv.DictReader((tmp_path / name / "per_image.csv").open()) if row["dataset"] == "diode"]
        for name in ("ours", "theirs")
    ]
    assert all(b > a for a, b in zip(*pixels))  # masked-out returns now count, as in the authors' code


def test_sun_decoding_per_frame_is_recorded(tiny_data_root, tiny_model_dir, tmp_path):
    root, _ = tiny_data_root
    result = _run("--zero-shot", "sun", "--data-root", root, "--captions", root / "captions", "--model", tiny_model_dir,
                  "--device", "cpu", "--input-size", "28x42", "--out", tmp_path, "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [row["notes"] for row in csv.DictReader((tmp_path / "per_image.csv").open())] == ["depth_encoding=rotated"] * 2
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["datasets"]["sunrgbd"]["per_frame_choices"] == {"depth_encoding": {"rotated": 2}}
    assert "depth encoding chosen per frame: rotated 2" in (tmp_path / "table.txt").read_text()
def test_eval_runs_in_fp32_unless_told_and_records_the_precision(tiny_data_root, tiny_model_dir, tmp_path):
    root, _ = tiny_data_root
    for flags, expected in (((), "fp32"), (("--precision", "bf16"), "bf16")):
        out = tmp_path / expected
        result = _run(
            "--zero-shot", "ibims", "--data-root", root, "--captions", root / "captions", "--model", tiny_model_dir,
            "--device", "cpu", "--size", "28x28", "--limit", "1", "--out", out, "-q", *flags,
        )
        assert result.exit_code == 0, result.output
        assert json.loads((out / "results.json").read_text())["model"]["precision"] == expected
