"""Checkpoint files: nested training state in and out exactly, without pickle."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from tr2m_cli.errors import WeightsError
from tr2m_cli.train.state import (
    capture_rng,
    flatten_state,
    read_checkpoint,
    read_progress,
    restore_rng,
    unflatten_state,
    write_checkpoint,
)


def test_nested_state_round_trips_with_int_keys_tuples_arrays_and_nan():
    state = {
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}, 5: {"exp_avg": torch.randn(2, 3)}},
                      "param_groups": [{"betas": (0.9, 0.999), "params": [0, 5], "foreach": None}]},
        "numpy": ("MT19937", np.arange(5, dtype=np.uint32), 2),
        "value": math.nan,
        "flag": True,
    }  # fmt: skip
    tensors, skeleton = flatten_state(state)
    back = unflatten_state(skeleton, tensors)
    assert set(back["optimizer"]["state"]) == {0, 5}
    assert torch.equal(back["optimizer"]["state"][5]["exp_avg"], state["optimizer"]["state"][5]["exp_avg"])
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert isinstance(back["numpy"], tuple) and np.array_equal(back["numpy"][1], np.arange(5))
    assert math.isnan(back["value"]) and back["flag"] is True
    with pytest.raises(TypeError, match="keys"):
        flatten_state({1: 1, "a": 2})


def test_checkpoint_file_restores_an_optimizer_exactly(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    path = write_checkpoint(tmp_path / "c.safetensors", {"optimizer": optimizer.state_dict(), "progress": {"global_step": 7}})
    assert read_progress(path) == {"global_step": 7}
    fresh = torch.optim.AdamW(model.parameters(), lr=5.0)
    fresh.load_state_dict(read_checkpoint(path)["optimizer"])
    assert fresh.param_groups[0]["lr"] == 1e-3
    for a, b in zip(optimizer.state.values(), fresh.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    assert not list(tmp_path.glob(".tr2m-tmp-*"))  # written atomically


def test_rng_state_restored_repeats_the_same_draws(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = write_checkpoint(tmp_path / "rng.safetensors", {"rng": capture_rng()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng(read_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_other_files_are_refused_with_one_line(tmp_path):
    from safetensors.torch import save_file

    head = tmp_path / "head.safetensors"
    save_file({"a": torch.zeros(1)}, str(head))
    with pytest.raises(WeightsError, match="not a tr2m training checkpoint"):
        read_checkpoint(head)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        read_checkpoint(broken)
    with pytest.raises(WeightsError, match="no such checkpoint"):
        read_progress(tmp_path / "missing.safetensors")
