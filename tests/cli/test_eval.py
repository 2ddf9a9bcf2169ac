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
    assert "SUN RGB-D (first 1 of 2)" in output and "0.451" in output and "not comparable with the paper" in output
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
    assert (out / "table.txt").read_text().startswith("In-domain")
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
    assert list(json.loads((tmp_path / "out/results.json").read_text())["datasets"]) == ["ibims"]
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
    assert ctx.params["in_domain"] == ("nyu", "kitti", "void") and ctx.params["zero_shot"] == ("sun", "ibims,diode")
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


def test_eval_runs_in_fp32_unless_told_and_records_the_precision(tiny_data_root, tiny_model_dir, tmp_path):
    root, _ = tiny_data_root
    for flags, expected in (((), "fp32"), (("--precision", "bf16"), "bf16")):
        out = tmp_path / expected
        result = _run(
            "--zero-shot", "ibims", "--data-root", root, "--captions", root / "captions", "--model", tiny_model_dir,
            "--device", "cpu", "--input-size", "28x28", "--limit", "1", "--out", out, "-q", *flags,
        )
        assert result.exit_code == 0, result.output
        assert json.loads((out / "results.json").read_text())["model"]["precision"] == expected
