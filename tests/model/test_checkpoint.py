"""Head files in every layout: the release, training checkpoints, ours; strictness and safety."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch

from tr2m_cli.errors import WeightsError
from tr2m_cli.model.checkpoint import (
    head_from_state,
    infer_head_config,
    load_head,
    ours_to_released,
    read_head_file,
    released_to_ours,
    save_head,
)
from tr2m_cli.model.config import HeadConfig
from tr2m_cli.model.head import ScaleShiftHead
from tr2m_cli.testing import tiny_head_config


def _random_released_state(cfg: HeadConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = ours_to_released(ScaleShiftHead(cfg).state_dict())
    return {k: torch.randn(v.shape, generator=generator) for k, v in shapes.items()}


def _assert_same(head: ScaleShiftHead, released: dict[str, torch.Tensor]) -> None:
    loaded = ours_to_released(head.state_dict())
    assert set(loaded) == set(released)
    for key, value in released.items():
        assert torch.equal(loaded[key], value), key


def test_full_size_released_file_loads_strictly(tmp_path):
    released = _random_released_state(HeadConfig())
    path = tmp_path / "da_s_vitl_vitl.pth"
    torch.save({"state_dict": released}, path)
    head = load_head(path)
    assert head.config == HeadConfig()
    assert sum(p.numel() for p in head.parameters()) == 18_959_746
    _assert_same(head, released)


@pytest.mark.parametrize("prefix", ["scalemap.", "module.scalemap."])
def test_training_checkpoint_layouts(tmp_path, prefix):
    cfg = tiny_head_config()
    released = _random_released_state(cfg, seed=1)
    model = {prefix + k: v for k, v in released.items()}
    model[prefix.replace("scalemap.", "depth_anything.") + "blocks.0.weight"] = torch.zeros(3)  # frozen parts
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": model, "epoch": 7, "optimizer": {"state": {}}}, path)
    head = load_head(path, cfg)
    _assert_same(head, released)


def test_our_safetensors_round_trip_records_sizes(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_head_config(image_channels=48, text_channels=24)
    head = ScaleShiftHead(cfg)
    save_head(head, tmp_path / "head.safetensors")
    state, recorded = read_head_file(tmp_path / "head.safetensors")
    assert recorded == cfg  # including the attention heads, which shapes cannot show
    again = load_head(tmp_path / "head.safetensors")
    for key, value in head.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_sizes_are_read_from_shapes():
    cfg = HeadConfig(
        image_channels=64, text_channels=40, attention_heads=8, mlp_channels=96, projection_channels=20,
        trunk_channels=12, head_channels=10, head_hidden_channels=6,
    )
    state = ScaleShiftHead(cfg).state_dict()
    assert infer_head_config(state) == cfg


def test_key_maps_are_inverse():
    state = ScaleShiftHead(tiny_head_config()).state_dict()
    assert released_to_ours(ours_to_released(state)).keys() == state.keys()


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path):
    cfg = tiny_head_config()
    released = _random_released_state(cfg)
    del released["out_conv2.bias"]
    released["extra_layer.weight"] = torch.zeros(2)
    released["projects.bias"] = torch.zeros(5)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": released}, path)
    with pytest.raises(WeightsError) as info:
        load_head(path, cfg)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "missing: out_conv2.bias" in message
    assert "unexpected: extra_layer.weight" in message
    assert "mis-shaped: projects.bias (5,) (expected (24,))" in message


def test_not_a_head_at_all(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(WeightsError, match="not a TR2M head: missing crossattn.ln_1.weight"):
        load_head(path)


def test_truncated_and_empty_files(tmp_path):
    path = tmp_path / "head.pth"
    torch.save({"state_dict": _random_released_state(tiny_head_config())}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_head(path)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        load_head(empty)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(200))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_head(junk)
    with pytest.raises(WeightsError, match="no such file"):
        load_head(tmp_path / "absent.pth")


class _RunsCode:
    """A pickle payload that would create a file if it were ever unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_code_running_pickle_is_refused(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"projects.weight": torch.zeros(1)}, "hook": _RunsCode(str(marker))}
    if container == "zip":
        torch.save(payload, path)
        assert zipfile.is_zipfile(path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle)
    with pytest.raises(WeightsError, match="refused to load"):
        load_head(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "spoil,message",
    [
        (lambda s, k: s.__setitem__(k, torch.full_like(s[k], float("nan"))), "holds NaN or infinite values"),
        (lambda s, k: s.__setitem__(k, torch.full_like(s[k], float("inf"))), "holds NaN or infinite values"),
        (lambda s, k: s.__setitem__(k, s[k].to(torch.int64)), "holds int64 values, not floating point"),
        (lambda s, k: s.__setitem__(k, s[k] > 0), "holds bool values, not floating point"),
    ],
)
def test_heads_that_cannot_give_depth_are_refused_at_load(tmp_path, spoil, message):
    """Such a head would write all-NaN or zero depth marked ok (int weights are silently cast)."""
    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in ScaleShiftHead(tiny_head_config()).state_dict().items()}
    spoil(state, "scale_head.conv3.weight")
    path = tmp_path / "head.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError) as info:
        load_head(path, tiny_head_config())
    assert message in str(info.value) and "output_conv_scale2.2.weight" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("coefficient", [-1.0, 0.0, float("nan")])
def test_non_positive_coefficients_are_refused(tmp_path, coefficient):
    from dataclasses import replace

    config = replace(tiny_head_config(), scale_coefficient=coefficient)
    state = ScaleShiftHead(tiny_head_config()).state_dict()
    with pytest.raises(WeightsError, match="scale_coefficient .* must be a positive finite number"):
        head_from_state(state, config, tmp_path / "head")


def test_head_sha256_equals_the_file_save_head_writes(tmp_path):
    import hashlib

    from tr2m_cli.model.checkpoint import head_sha256

    head = ScaleShiftHead(tiny_head_config())
    save_head(head, tmp_path / "head.safetensors")
    assert head_sha256(head) == hashlib.sha256((tmp_path / "head.safetensors").read_bytes()).hexdigest()
