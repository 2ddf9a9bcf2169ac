"""The head against spec §3: key layout, parameter count, and the forward pass re-derived
independently from the released key names with plain torch functions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tr2m_cli.model.checkpoint import ours_to_released
from tr2m_cli.model.config import HeadConfig
from tr2m_cli.model.head import FP32LayerNorm, ScaleShiftHead, metric_from_relative
from tr2m_cli.testing import tiny_head_config

# Spec §3: the 51 keys of the released file.
RELEASED_KEYS = {
    "align_mlp.a_fc.weight", "align_mlp.a_fc.bias",
    *(f"crossattn.{a}.{p}" for a in ("attn", "attn_cross")
      for p in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")),
    *(f"crossattn.{n}.{p}" for n in ("ln_1", "ln_2", "ln_text", "ln_visual") for p in ("weight", "bias")),
    *(f"crossattn.mlp.{n}.{p}" for n in ("c_fc", "c_proj") for p in ("weight", "bias")),
    "projects.weight", "projects.bias", "resize_layers.weight", "resize_layers.bias", "layer1_rn.weight",
    *(f"resConfUnit{i}.conv{j}.{p}" for i in (1, 2) for j in (1, 2) for p in ("weight", "bias")),
    *(f"out_conv{i}.{p}" for i in (1, 2) for p in ("weight", "bias")),
    *(f"output_conv_{m}1.{p}" for m in ("scale", "shift") for p in ("weight", "bias")),
    *(f"output_conv_{m}2.{i}.{p}" for m in ("scale", "shift") for i in (0, 2) for p in ("weight", "bias")),
}  # fmt: skip


def test_released_layout_and_parameter_count():
    head = ScaleShiftHead(HeadConfig())
    released = ours_to_released(head.state_dict())
    assert len(RELEASED_KEYS) == 51
    assert set(released) == RELEASED_KEYS
    assert sum(p.numel() for p in head.parameters()) == 18_959_746
    shapes = {k: tuple(v.shape) for k, v in released.items()}
    assert shapes["align_mlp.a_fc.weight"] == (1024, 768)
    assert shapes["crossattn.attn.in_proj_weight"] == (3072, 1024)
    assert shapes["crossattn.mlp.c_fc.weight"] == (4096, 1024)
    assert shapes["projects.weight"] == (192, 1024, 1, 1)
    assert shapes["resize_layers.weight"] == (192, 192, 2, 2)
    assert shapes["layer1_rn.weight"] == (128, 192, 3, 3)
    assert shapes["output_conv_shift2.2.weight"] == (1, 32, 1, 1)


def test_no_text_alignment_when_widths_match():
    head = ScaleShiftHead(tiny_head_config(image_channels=32, text_channels=32))
    assert head.text_align is None
    assert not any(k.startswith("align_mlp") for k in ours_to_released(head.state_dict()))


def _layer_norm(x, state, name):
    return F.layer_norm(x.float(), x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], 1e-5)


def _attention(query, key, state, name, heads):
    """nn.MultiheadAttention by hand, sequence-first as the reference calls it."""
    w, b = state[f"{name}.in_proj_weight"], state[f"{name}.in_proj_bias"]
    c = query.shape[-1]
    q = F.linear(query, w[:c], b[:c])
    k = F.linear(key, w[c : 2 * c], b[c : 2 * c])
    v = F.linear(key, w[2 * c :], b[2 * c :])

    def split(t):  # [L, B, C] → [B, heads, L, C/heads]
        return t.reshape(t.shape[0], t.shape[1], heads, c // heads).permute(1, 2, 0, 3)

    weights = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(c // heads), dim=-1)
    out = (weights @ split(v)).permute(2, 0, 1, 3).reshape(query.shape)
    return F.linear(out, state[f"{name}.out_proj.weight"], state[f"{name}.out_proj.bias"])


def _quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def reference_forward(state, tokens, text, grid, heads):
    """Spec §3 written out with the released key names, independent of our modules."""
    h, w = grid
    if "align_mlp.a_fc.weight" in state:
        text = _quick_gelu(F.linear(text, state["align_mlp.a_fc.weight"], state["align_mlp.a_fc.bias"]))
    x = tokens.permute(1, 0, 2)  # [L, B, C]
    t = text[None]  # [1, B, C]
    y = _layer_norm(x, state, "crossattn.ln_1")
    x = x + _attention(y, y, state, "crossattn.attn", heads)
    x = x + _attention(
        _layer_norm(x, state, "crossattn.ln_visual"), _layer_norm(t, state, "crossattn.ln_text"), state,
        "crossattn.attn_cross", heads,
    )
    y = _layer_norm(x, state, "crossattn.ln_2")
    hidden = _quick_gelu(F.linear(y, state["crossattn.mlp.c_fc.weight"], state["crossattn.mlp.c_fc.bias"]))
    x = x + F.linear(hidden, state["crossattn.mlp.c_proj.weight"], state["crossattn.mlp.c_proj.bias"])
    x = x.permute(1, 2, 0).reshape(tokens.shape[0], tokens.shape[2], h, w)
    x = F.conv2d(x, state["projects.weight"], state["projects.bias"])
    x = F.conv_transpose2d(x, state["resize_layers.weight"], state["resize_layers.bias"], stride=2)
    x = F.conv2d(x, state["layer1_rn.weight"], padding=1)
    for i in (1, 2):
        r = F.conv2d(F.relu(x), state[f"resConfUnit{i}.conv1.weight"], state[f"resConfUnit{i}.conv1.bias"], padding=1)
        r = F.conv2d(F.relu(r), state[f"resConfUnit{i}.conv2.weight"], state[f"resConfUnit{i}.conv2.bias"], padding=1)
        x = F.conv2d(x + r, state[f"out_conv{i}.weight"], state[f"out_conv{i}.bias"])
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    maps = []
    for kind in ("scale", "shift"):
        m = F.conv2d(x, state[f"output_conv_{kind}1.weight"], state[f"output_conv_{kind}1.bias"], padding=1)
        m = F.interpolate(m, size=(14 * h, 14 * w), mode="bilinear", align_corners=True)
        m = F.relu(F.conv2d(m, state[f"output_conv_{kind}2.0.weight"], state[f"output_conv_{kind}2.0.bias"], padding=1))
        m = F.conv2d(m, state[f"output_conv_{kind}2.2.weight"], state[f"output_conv_{kind}2.2.bias"])
        maps.append(0.01 * torch.exp(m))
    return maps


@pytest.mark.parametrize("text_channels", [16, 32])
def test_forward_matches_independent_reference(text_channels):
    torch.manual_seed(3)
    cfg = tiny_head_config(image_channels=32, text_channels=text_channels)
    head = ScaleShiftHead(cfg).eval()
    with torch.no_grad():  # damp the last convs so exp() stays in a range where float32 compares well
        for out in (head.scale_head, head.shift_head):
            out.conv3.weight.mul_(0.05)
    grid = (3, 5)
    tokens = torch.randn(2, 15, 32)
    text = torch.randn(2, text_channels)
    with torch.no_grad():
        ours = head(tokens, text, grid)
        scale, shift = reference_forward(ours_to_released(head.state_dict()), tokens, text, grid, cfg.attention_heads)
    assert ours.scale_map.shape == (2, 1, 42, 70)
    torch.testing.assert_close(ours.scale_map, scale, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours.shift_map, shift, rtol=1e-4, atol=1e-6)
    assert ours.fused_features.shape == (2, 32, 3, 5)


def test_maps_positive_and_sized_to_request():
    torch.manual_seed(0)
    head = ScaleShiftHead(tiny_head_config()).eval()
    with torch.no_grad():
        out = head(torch.randn(1, 6, 32), torch.randn(1, 16), (2, 3), output_size=(30, 40))
    assert out.scale_map.shape == out.shift_map.shape == (1, 1, 30, 40)
    assert (out.scale_map > 0).all() and (out.shift_map > 0).all()


def test_token_count_must_fill_grid():
    head = ScaleShiftHead(tiny_head_config())
    with pytest.raises(ValueError, match="do not fill"):
        head(torch.randn(1, 7, 32), torch.randn(1, 16), (2, 3))


def test_layer_norm_runs_in_float32_for_half_inputs():
    torch.manual_seed(0)
    norm = FP32LayerNorm(64)
    x = torch.randn(4, 64) * 300
    expected = norm(x)
    half = norm(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), expected, rtol=2e-2, atol=2e-2)


def test_metric_from_relative_is_the_tr2m_transfer():
    relative = torch.tensor([[0.0, 1.0, 4.0]])
    scale = torch.tensor([[0.5, 0.5, 0.25]])
    shift = torch.tensor([[0.1, 0.5, 1.0]])
    expected = torch.tensor([[1 / 0.1, 1 / 1.0, 1 / 2.0]])
    torch.testing.assert_close(metric_from_relative(relative, scale, shift), expected)


def test_head_config_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        HeadConfig(image_channels=30, attention_heads=8)


def test_fuse_alone_gives_the_features_the_forward_pass_uses():
    """Training's momentum copy runs `fuse_tokens` on copied modules: it must be the same path."""
    import copy

    from tr2m_cli.model.head import fuse_tokens

    torch.manual_seed(1)
    head = ScaleShiftHead(tiny_head_config()).eval()
    tokens, text = torch.randn(2, 6, 32), torch.randn(2, 16)
    with torch.no_grad():
        full = head(tokens, text, (2, 3)).fused_features
        alone = head.fuse(tokens, text, (2, 3))
        copied = fuse_tokens(copy.deepcopy(head.text_align), copy.deepcopy(head.fusion), tokens, text, (2, 3))
    assert torch.equal(full, alone) and torch.equal(full, copied)
    with pytest.raises(ValueError, match="do not fill"):
        head.fuse(tokens, text, (2, 4))
