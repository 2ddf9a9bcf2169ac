"""Projector, momentum branch, what DDP/AdamW see, and the new head's initialisation."""

from __future__ import annotations

import torch

from tr2m_cli.model.config import HeadConfig
from tr2m_cli.model.head import ScaleShiftHead
from tr2m_cli.testing import tiny_head_config
from tr2m_cli.train.trainable import MomentumKeyBranch, ScaleProjector, TrainableParts, initialise_head


def test_projector_matches_the_papers_size_and_halves_the_grid():
    projector = ScaleProjector(1024)
    assert sum(p.numel() for p in projector.parameters()) == 189_760  # paper: ≈0.19 M
    assert ScaleProjector(32, 8, 6)(torch.randn(2, 32, 31, 40)).shape == (2, 6, 16, 20)
    assert ScaleProjector(32, 8, 6)(torch.randn(1, 32, 1, 3)).shape == (1, 6, 1, 2)


def test_momentum_branch_starts_as_a_copy_follows_by_ema_and_gets_no_gradient():
    torch.manual_seed(0)
    head, projector = ScaleShiftHead(tiny_head_config()), ScaleProjector(32, 8, 6)
    keys = MomentumKeyBranch(head, projector)
    tokens, text = torch.randn(2, 6, 32), torch.randn(2, 16)
    with torch.no_grad():
        expected = projector(head.fuse(tokens, text, (2, 3)))
    torch.testing.assert_close(keys(tokens, text, (2, 3)), expected)
    assert not any(p.requires_grad for p in keys.parameters())
    before = keys.fusion.mlp.fc_in.weight.clone()
    with torch.no_grad():
        head.fusion.mlp.fc_in.weight.add_(1.0)
    keys.update(head, projector, momentum=0.75)
    torch.testing.assert_close(keys.fusion.mlp.fc_in.weight, before + 0.25)
    assert keys(tokens, text, (2, 3)).requires_grad is False


def test_trainable_parts_hold_head_and_projector_only(tiny_model):
    projector = ScaleProjector(32, 8, 6)
    parts = TrainableParts(tiny_model, projector)
    names = {name.split(".")[0] for name, _ in parts.named_parameters()}
    assert names == {"head", "projector"}  # the frozen encoders stay outside DDP and AdamW


def test_pytorch_init_gives_moderate_maps_and_zero_attention_output_bias():
    torch.manual_seed(0)
    head = initialise_head(ScaleShiftHead(HeadConfig()), "pytorch")
    assert torch.count_nonzero(head.fusion.self_attn.out_proj.bias) == 0
    assert head.scale_head.conv3.weight.abs().max() < 0.2  # torch's default, not kaiming's
    torch.manual_seed(0)
    default = initialise_head(ScaleShiftHead(tiny_head_config()), "pytorch")
    kaiming = initialise_head(ScaleShiftHead(tiny_head_config()), "kaiming")
    tokens, text = torch.randn(1, 12, 32), torch.randn(1, 16)
    with torch.no_grad():
        spread = [torch.log(h(tokens, text, (3, 4)).scale_map / 0.01).abs().max() for h in (default, kaiming)]
    assert spread[0] < 5 < spread[1]  # A = 0.01·exp(logit): near 0.01 vs. wildly off

