"""The CLI layer shared by every command: one HxW type, one multi-value option, one way to end."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from tr2m_cli.cli import cli
from tr2m_cli.cli.types import SIZE, SIZE_OR_NONE, MultiValueGroup, multi_value_option, parse_hxw


@pytest.mark.parametrize("text", ["434x560", "434X560", "434×560", " 434 x 560 ", "434,560"])
def test_one_hxw_reader_for_every_spelling(text):
    assert parse_hxw(text) == (434, 560) and SIZE.convert(text, None, None) == (434, 560)


@pytest.mark.parametrize("text", ["434", "434x", "axb", "0x560", "434x560x3"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError, match="expected HxW|positive"):
        parse_hxw(text)
    with pytest.raises(click.BadParameter):
        SIZE.convert(text, None, None)


def test_none_is_a_size_only_where_allowed():
    assert SIZE_OR_NONE.convert("none", None, None) == "none"
    with pytest.raises(click.BadParameter):
        SIZE.convert("none", None, None)


def test_multi_value_options_take_words_commas_and_repeats():
    seen = {}

    @click.group(cls=MultiValueGroup, invoke_without_command=True)
    @multi_value_option("--datasets")
    @multi_value_option("--val-datasets")
    @click.option("--out")
    def group(datasets, val_datasets, out):
        seen.update(datasets=datasets, val=val_datasets, out=out)

    @group.command("export")
    def export():
        seen["export"] = True

    runner = CliRunner()
    result = runner.invoke(group, ["--datasets", "nyu", "kitti", "--out", "r", "--val-datasets", "ibims", "export"])
    assert result.exit_code == 0, result.output
    assert seen == {"datasets": ("nyu", "kitti"), "val": ("ibims",), "out": "r", "export": True}
    seen.clear()
    runner.invoke(group, ["--datasets", "nyu,kitti", "--datasets", "void"])
    assert seen["datasets"] == ("nyu", "kitti", "void")


@pytest.mark.parametrize("command", [["convert"], ["eval"], ["train"]])
def test_the_same_size_option_in_every_command_that_runs_the_network(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "--size HxW" in result.output and "--input-size" not in result.output  # the old spelling is hidden


def test_the_old_input_size_spelling_still_works_with_a_warning(tmp_path, monkeypatch):
    import tr2m_cli.train as train_package

    captured = {}

    def fake_train(config):
        captured["size"] = config.input_size
        raise KeyboardInterrupt

    monkeypatch.setattr(train_package, "train", fake_train)
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "r"), "--input-size", "56x70"])
    assert captured["size"] == (56, 70)
    assert "--input-size is now --size" in result.output
    assert result.exit_code == 130 and "tr2m train --resume" in result.output


def test_point_cloud_cut_and_evaluation_range_have_distinct_names():
    convert_help = CliRunner().invoke(cli, ["convert", "--help"]).output
    eval_help = CliRunner().invoke(cli, ["eval", "--help"]).output
    assert "--cloud-max-depth" in convert_help and "--max-depth" not in convert_help.replace("--cloud-max-depth", "")
    assert "--max-depth" in eval_help and "--cloud-max-depth" not in eval_help


def test_workers_means_the_same_in_every_command():
    for command in ("convert", "caption", "eval", "train"):
        text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
        assert "Background workers reading" in text and "0: in the main process" in text, command
