"""Model folders: importing every head layout, reading configs back, and clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from tr2m_cli.errors import WeightsError
from tr2m_cli.model.checkpoint import ours_to_released
from tr2m_cli.model.config import HeadConfig
from tr2m_cli.model.head import ScaleShiftHead
from tr2m_cli.testing import tiny_head_config
from tr2m_cli.weights.folder import CONFIG_NAME, HEAD_NAME, import_head, read_model_folder


def _released_file(path, cfg):
    torch.manual_seed(0)
    torch.save({"state_dict": ours_to_released(ScaleShiftHead(cfg).state_dict())}, path)
    return path


def test_import_the_authors_release_layout(tmp_path):
    head_file = _released_file(tmp_path / "da_s_vitl_vitl.pth", HeadConfig())
    folder = import_head(head_file, tmp_path / "official")
    spec = read_model_folder(folder)
    assert spec.head == HeadConfig()
    assert spec.encoders.image == "facebook/dinov2-large"
    assert spec.encoders.text == "openai/clip-vit-large-patch14"
    assert spec.encoders.relative_depth == "LiheYoung/depth-anything-small-hf"
    assert spec.units == "metres" and spec.token_budget == 1240
    assert spec.provenance["head_file"] == "da_s_vitl_vitl.pth" and len(spec.provenance["head_file_sha256"]) == 64
    assert (folder / HEAD_NAME).is_file()
    data = json.loads((folder / CONFIG_NAME).read_text())
    assert data["format"] == "tr2m-model" and data["units"] == "metres"


def test_import_reads_other_widths_from_the_file(tmp_path, tiny_encoders):
    cfg = tiny_head_config()
    head_file = _released_file(tmp_path / "small.pth", cfg)
    folder = import_head(
        head_file,
        tmp_path / "small",
        image_encoder=tiny_encoders["image"],
        text_encoder=tiny_encoders["text"],
        depth_model=tiny_encoders["relative_depth"],
        attention_heads=2,
    )
    spec = read_model_folder(folder)
    assert spec.head == cfg
    assert spec.encoders.image == str(tiny_encoders["image"].resolve())  # outside the folder: absolute


def test_encoders_inside_the_folder_are_stored_relative(tiny_model_dir):
    spec = read_model_folder(tiny_model_dir)
    assert spec.encoders.image == "encoders/dinov2"
    assert spec.encoders.relative_depth == "encoders/depth_anything"


def test_existing_model_needs_force(tmp_path):
    head_file = _released_file(tmp_path / "h.pth", tiny_head_config())
    import_head(head_file, tmp_path / "m", attention_heads=2)
    with pytest.raises(WeightsError, match="already holds a model"):
        import_head(head_file, tmp_path / "m")
    import_head(head_file, tmp_path / "m", attention_heads=2, overwrite=True)


def test_a_bad_head_writes_nothing(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"projects.weight": torch.zeros(3)}}, bad)
    with pytest.raises(WeightsError):
        import_head(bad, tmp_path / "out")
    assert not (tmp_path / "out" / CONFIG_NAME).exists()


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "not a tr2m model folder"),
        ("{not json", "not valid JSON"),
        ('{"format": "something-else"}', 'format" must be "tr2m-model"'),
        ('{"format": "tr2m-model", "format_version": 99}', "newer tr2m"),
        ('{"format": "tr2m-model", "head": {}}', "malformed model config"),
        (
            '{"format": "tr2m-model", "head": {}, "encoders": {}, "units": "furlongs"}',
            "unknown unit 'furlongs'",
        ),
    ],
)
def test_config_errors(tmp_path, content, message):
    if content is not None:
        (tmp_path / CONFIG_NAME).write_text(content)
    with pytest.raises(WeightsError, match=message):
        read_model_folder(tmp_path)


@pytest.mark.parametrize(
    "head,message",
    [
        ({"attention_heads": 0}, "head attention_heads = 0 is out of range"),
        ({"mlp_channels": 2e9}, "head mlp_channels must be a whole number"),
        ({"mlp_channels": 2_000_000_000}, "head mlp_channels = 2000000000 is out of range"),
        ({"image_channels": "1024"}, "head image_channels must be a whole number"),
        ({"scale_coefficient": -1}, "head scale_coefficient = -1: must be a positive finite number"),
        ({"shift_coefficient": float("nan")}, "head shift_coefficient = nan: must be a positive finite number"),
        ({"weights": "../../etc/passwd"}, "'head.weights' must be a file name inside the model folder"),
        ({"colour": 3}, "unknown head setting 'colour'"),
    ],
)
def test_every_model_config_field_is_checked_in_one_line(tiny_model_dir, tmp_path, head, message):
    import shutil

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["head"].update(head)
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(WeightsError) as info:
        read_model_folder(folder)
    assert message in str(info.value) and CONFIG_NAME in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"units": "furlongs"}, "unknown unit 'furlongs'"),
        ({"domain_units": {"surgical": 7}}, "unknown unit 7"),
        ({"input": {"token_budget": 10**9}}, "'input.token_budget' must be a whole number in 1–100000"),
        ({"encoders": {"image": 5}}, "'encoders.image' must be a Hugging Face id or a folder"),
        ({"name": ["x"]}, "field 'name' must be text"),
        ({"format_version": "1"}, "'format_version' must be a whole number"),
    ],
)
def test_other_model_config_fields_are_checked(tiny_model_dir, tmp_path, change, message):
    import shutil

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    config = json.loads((folder / CONFIG_NAME).read_text())
    for key, value in change.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and isinstance(config.get(key), dict) else value
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(WeightsError, match=re.escape(message)):
        read_model_folder(folder)
