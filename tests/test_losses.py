"""Each training loss on inputs whose answer can be worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tr2m_cli.losses import (
    LossOptions,
    delta1,
    depth_classes,
    dual_level_contrast_loss,
    edge_aware_smoothness,
    fit_inverse_depth,
    pseudo_depth,
    scale_contrast_loss,
    scale_invariant_log_loss,
    thresholded_pseudo_depth_loss,
    training_loss,
)


def _depth(b=2, h=6, w=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.5 + 4.5 * torch.rand(b, h, w, generator=g)


# -- L_si --------------------------------------------------------------------------------------------


def test_si_is_zero_for_a_scaled_prediction_when_fully_scale_invariant():
    gt = _depth()
    valid = torch.ones_like(gt, dtype=torch.bool)
    pred = gt * torch.tensor([3.0, 0.2]).view(2, 1, 1)  # a different scale per image
    assert scale_invariant_log_loss(pred, gt, valid, variance_focus=1.0).item() == pytest.approx(0.0, abs=1e-6)
    # With the paper's λ = 0.15 the scale is penalised: (1 − λ)·mean over images of (ln k)².
    expected = 0.85 * (math.log(3.0) ** 2 + math.log(0.2) ** 2) / 2
    assert scale_invariant_log_loss(pred, gt, valid, 0.15).item() == pytest.approx(expected, rel=1e-5)


def test_si_by_hand_and_only_over_valid_pixels():
    gt = torch.ones(1, 1, 4)
    pred = torch.tensor([[[math.e, 1.0, 1.0, 1000.0]]])  # ε = 1, 0, 0, (ignored)
    valid = torch.tensor([[[True, True, True, False]]])
    # mean ε² = 1/3, mean ε = 1/3 → 1/3 − 0.5·1/9
    assert scale_invariant_log_loss(pred, gt, valid, 0.5).item() == pytest.approx(1 / 3 - 0.5 / 9, rel=1e-6)


def test_si_ignores_images_without_ground_truth_and_keeps_the_graph():
    gt = _depth()
    pred = gt.clone().requires_grad_(True)
    valid = torch.zeros_like(gt, dtype=torch.bool)
    loss = scale_invariant_log_loss(pred * 2, gt, valid)
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None and torch.count_nonzero(pred.grad) == 0
    valid[1] = True  # only image 1 counts: its loss alone
    alone = scale_invariant_log_loss(pred[1:] * 2, gt[1:], valid[1:])
    assert scale_invariant_log_loss(pred * 2, gt, valid).item() == pytest.approx(alone.item())


# -- L_tp-si -------------------------------------------------------------------------------------------


def test_least_squares_recovers_alpha_beta_exactly():
    g = torch.Generator().manual_seed(1)
    relative = 0.1 + 3 * torch.rand(2, 8, 9, generator=g)
    alpha, beta = torch.tensor([0.7, 2.5]), torch.tensor([0.05, 0.3])
    depth = 1.0 / (alpha.view(2, 1, 1) * relative + beta.view(2, 1, 1))
    valid = torch.rand(2, 8, 9, generator=g) > 0.3  # sparse ground truth is enough
    got_alpha, got_beta, ok = fit_inverse_depth(relative, depth, valid)
    assert ok.all()
    torch.testing.assert_close(got_alpha.float(), alpha, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_beta.float(), beta, rtol=1e-5, atol=1e-6)
    pseudo, usable = pseudo_depth(relative, got_alpha, got_beta)
    assert usable.all()
    torch.testing.assert_close(pseudo, depth, rtol=1e-5, atol=1e-6)


def test_fit_is_flagged_undetermined_with_one_pixel_or_constant_relative_depth():
    relative = torch.stack([torch.rand(4, 4), torch.full((4, 4), 2.0)])
    depth = torch.ones(2, 4, 4)
    valid = torch.ones(2, 4, 4, dtype=torch.bool)
    valid[0] = False
    valid[0, 1, 1] = True
    _, _, ok = fit_inverse_depth(relative, depth, valid)
    assert ok.tolist() == [False, False]


def test_pseudo_depth_marks_non_positive_and_too_deep_values_unusable():
    relative = torch.tensor([[[0.0, 1.0, 2.0, 10.0]]])
    depth, usable = pseudo_depth(relative, torch.tensor([-0.1]), torch.tensor([0.5]), max_depth=2.6)
    # 1/(−0.1·r + 0.5): 2.0, 2.5, 3.33 (too deep), −2 (negative)
    assert usable.tolist() == [[[True, True, False, False]]]
    assert depth[0, 0, :2].tolist() == pytest.approx([2.0, 2.5])


def test_pseudo_loss_gate_passes_for_a_good_fit_and_supervises_every_pixel():
    g = torch.Generator().manual_seed(2)
    relative = 0.2 + torch.rand(1, 6, 6, generator=g)
    depth = 1.0 / (0.5 * relative + 0.1)
    valid = torch.zeros(1, 6, 6, dtype=torch.bool)
    valid[0, :2] = True  # ground truth only in the top two rows
    pred = torch.full((1, 6, 6), 1.0, requires_grad=True)
    out = thresholded_pseudo_depth_loss(pred, relative, depth, valid, threshold=0.9, variance_focus=0.0)
    assert out.passed.tolist() == [True]
    out.loss.backward()
    assert (pred.grad[0, 2:] != 0).all()  # rows without ground truth are supervised too
    expected = torch.log(depth).pow(2).mean()  # pred = 1 → ε = −ln D
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_pseudo_loss_gate_fails_when_relative_depth_does_not_explain_the_ground_truth():
    g = torch.Generator().manual_seed(3)
    relative = torch.rand(1, 8, 8, generator=g)
    depth = 1.0 + 9.0 * torch.rand(1, 8, 8, generator=g)  # unrelated to D_r
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    pred = torch.ones(1, 8, 8, requires_grad=True)
    out = thresholded_pseudo_depth_loss(pred, relative, depth, valid, threshold=0.9)
    assert out.passed.tolist() == [False]
    assert out.loss.item() == 0.0
    # ... and ρ = 0 lets any determined fit through.
    assert thresholded_pseudo_depth_loss(pred, relative, depth, valid, threshold=0.0).passed.tolist() == [True]


def test_delta1_by_hand():
    pred = torch.tensor([[[1.0, 1.3, 0.7, 5.0]]])
    gt = torch.ones(1, 1, 4)
    valid = torch.tensor([[[True, True, True, False]]])
    assert delta1(pred, gt, valid).tolist() == pytest.approx([1 / 3])


# -- L_soc -------------------------------------------------------------------------------------------


def test_depth_classes_split_the_range_into_equal_bins():
    depth = torch.tensor([[[1.0, 1.2, 1.7, 2.2, 2.9, 3.0, 7.0]]])
    valid = torch.tensor([[[True, True, True, True, True, True, False]]])
    classes = depth_classes(depth, valid, num_classes=4)
    # range [1, 3], bin width 0.5, class 0 = farthest; the nearest depth closes the last bin
    assert classes.tolist() == [[[3, 3, 2, 1, 0, 0, -1]]]


def test_depth_classes_on_a_feature_grid_average_valid_depth_per_cell():
    depth = torch.tensor([[[1.0, 1.0, 3.0, 9.0], [1.0, 1.0, 3.0, 3.0]]])
    valid = torch.tensor([[[True, True, True, False], [True, True, True, True]]])
    classes = depth_classes(depth, valid, num_classes=2, grid=(1, 2))
    assert classes.tolist() == [[[1, 0]]]  # cell means 1 (near) and 3 (far; the 9 is invalid)
    valid[0, :, 2:] = False
    assert depth_classes(depth, valid, num_classes=2, grid=(1, 2)).tolist() == [[[0, -1]]]


def _clustered_features(classes: torch.Tensor, dim: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(int(classes.max()) + 1, dim, generator=g)
    features = centres[classes.clamp(min=0)] + 0.05 * torch.randn(*classes.shape, dim, generator=g)
    return features.permute(0, 3, 1, 2)  # [B, D, h, w]


def test_contrast_is_lower_for_features_clustered_by_class_than_for_shuffled_ones():
    g = torch.Generator().manual_seed(4)
    classes = torch.randint(0, 5, (2, 6, 8), generator=g)
    clustered = _clustered_features(classes)
    flat = clustered.flatten(2)
    shuffled = flat[:, :, torch.randperm(flat.shape[-1], generator=g)].view_as(clustered)
    good = scale_contrast_loss(clustered, clustered, classes, classes)
    bad = scale_contrast_loss(shuffled, shuffled, classes, classes)
    assert good < bad - 0.2
    # Perfect clusters: S_p = 1; S_n ≈ mean cosine between random centres (near 0).
    assert good.item() < math.log(1 + math.exp(0.3 - 1.0))


def test_contrast_value_by_hand():
    # One query of class 0 = [1, 0]; keys: class 0 [1, 0] and class 1 [0, 1] → S_p = 1, S_n = 0.
    queries = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T.reshape(1, 2, 1, 2)
    loss = scale_contrast_loss(queries, keys, torch.tensor([[[0]]]), torch.tensor([[[0, 1]]]))
    assert loss.item() == pytest.approx(-math.log(math.e / (math.e + 1.0)), rel=1e-6)


def test_contrast_ignores_invalid_pixels_and_queries_without_negatives():
    queries = torch.randn(1, 4, 2, 2, requires_grad=True)
    classes = torch.tensor([[[0, 0], [0, -1]]])  # one class only: no negatives anywhere
    loss = scale_contrast_loss(queries, queries.detach(), classes, classes)
    assert loss.item() == 0.0
    loss.backward()
    assert queries.grad is not None


def test_dual_level_contrast_uses_another_image_of_the_batch():
    depth = torch.linspace(1, 5, 16).view(1, 4, 4).repeat(2, 1, 1)
    valid = torch.ones_like(depth, dtype=torch.bool)
    classes = depth_classes(depth, valid, 4, grid=(4, 4))
    features = _clustered_features(classes)
    keys = features.clone()
    keys[1] = torch.randn_like(keys[1])  # image 1's keys are noise: hurts both levels
    clean = dual_level_contrast_loss(features, features, depth, valid, 4)
    noisy = dual_level_contrast_loss(features, keys, depth, valid, 4)
    same_only = 0.5 * (
        scale_contrast_loss(features, keys, classes, classes)
        + scale_contrast_loss(features, keys.roll(1, 0), classes, classes.roll(1, 0))
    )
    assert noisy.item() == pytest.approx(same_only.item())
    assert clean < noisy


# -- L_es --------------------------------------------------------------------------------------------


def test_smoothness_is_zero_on_constant_maps_and_positive_otherwise():
    image = torch.rand(2, 3, 5, 6)
    assert edge_aware_smoothness(torch.full((2, 5, 6), 0.3), image).item() == 0.0
    ramp = torch.arange(6.0).expand(2, 5, 6) + 1.0
    assert edge_aware_smoothness(ramp, image).item() > 0


def test_smoothness_is_forgiven_at_image_edges_and_independent_of_units():
    step = torch.ones(1, 4, 6)
    step[..., 3:] = 2.0
    flat_image = torch.zeros(1, 3, 4, 6)
    edge_image = flat_image.clone()
    edge_image[..., 3:] = 1.0  # an image edge where the map steps
    assert edge_aware_smoothness(step, edge_image) < edge_aware_smoothness(step, flat_image)
    torch.testing.assert_close(edge_aware_smoothness(step * 1000, flat_image), edge_aware_smoothness(step, flat_image))


# -- the total -----------------------------------------------------------------------------------------


def test_total_weights_terms_and_switches_them_off():
    g = torch.Generator().manual_seed(5)
    depth = _depth(2, 14, 14)
    valid = torch.ones_like(depth, dtype=torch.bool)
    inputs = dict(
        metric_depth=depth * 1.3,
        relative_depth=1.0 / depth,
        scale_map=torch.rand(2, 14, 14, generator=g) + 0.1,
        shift_map=torch.rand(2, 14, 14, generator=g) + 0.1,
        image=torch.rand(2, 3, 14, 14, generator=g),
        depth=depth,
        valid=valid,
        queries=torch.randn(2, 4, 2, 2, generator=g),
        keys=torch.randn(2, 4, 2, 2, generator=g),
    )
    settings = LossOptions()
    terms = training_loss(settings, **inputs)
    expected = terms["si"] + 0.5 * terms["pseudo"] + 0.1 * terms["contrast"] + 0.01 * terms["smoothness"]
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["pseudo_gate"].item() == 1.0  # D_r = 1/D fits exactly
    only_si = training_loss(LossOptions(pseudo_weight=0, contrast_weight=0, smoothness_weight=0), **inputs)
    assert set(only_si) == {"si", "total"}
    assert only_si["total"].item() == pytest.approx(terms["si"].item())
    with pytest.raises(ValueError, match="contrast"):
        training_loss(settings, **{**inputs, "queries": None})


def test_settings_reject_nonsense():
    with pytest.raises(ValueError, match="negative"):
        LossOptions(si_weight=-1)
    with pytest.raises(ValueError, match="at least 2"):
        LossOptions(scale_classes=1)
    assert LossOptions.from_dict(LossOptions(pseudo_threshold=0.8).to_dict()).pseudo_threshold == 0.8


# -- readings of the paper where it is silent (options; the defaults are the first) ------------------


def test_pseudo_loss_averaged_over_passing_images_or_the_whole_batch():
    g = torch.Generator().manual_seed(2)
    relative = 0.2 + torch.rand(2, 6, 6, generator=g)
    depth = 1.0 / (0.5 * relative + 0.1)
    depth[1] = 1.0 + 9.0 * torch.rand(6, 6, generator=g)  # image 1's fit fails the gate
    valid = torch.ones(2, 6, 6, dtype=torch.bool)
    pred = torch.ones(2, 6, 6)
    passing = thresholded_pseudo_depth_loss(pred, relative, depth, valid, variance_focus=0.0)
    batch = thresholded_pseudo_depth_loss(pred, relative, depth, valid, variance_focus=0.0, average="batch")
    assert passing.passed.tolist() == [True, False]
    expected = torch.log(depth[0]).pow(2).mean().item()  # the one passing image, pred = 1
    assert passing.loss.item() == pytest.approx(expected, rel=1e-4)
    assert batch.loss.item() == pytest.approx(expected / 2, rel=1e-4)  # one of two images


def test_negatives_as_a_mean_similarity_or_one_by_one():
    # One query of class 0 = [1, 0]; keys: class 0 [1, 0], class 1 [0, 1] and [-1, 0].
    queries = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]).T.reshape(1, 2, 1, 3)
    classes = (torch.tensor([[[0]]]), torch.tensor([[[0, 1, 1]]]))
    mean = scale_contrast_loss(queries, keys, *classes)  # S_n = (0 + (-1)) / 2
    assert mean.item() == pytest.approx(-math.log(math.e / (math.e + math.exp(-0.5))), rel=1e-6)
    each = scale_contrast_loss(queries, keys, *classes, negatives="sum-exp")  # e^0 + e^-1
    assert each.item() == pytest.approx(-math.log(math.e / (math.e + 1.0 + math.exp(-1.0))), rel=1e-6)


def test_depth_classes_over_each_image_or_the_dataset_range():
    depth = torch.tensor([[[1.0, 2.0, 3.0, 4.0]], [[1.0, 1.5, 2.0, 2.5]]])  # [2, 1, 4]
    valid = torch.ones_like(depth, dtype=torch.bool)
    per_image = depth_classes(depth, valid, 4)
    assert per_image.tolist() == [[[3, 2, 1, 0]], [[3, 2, 1, 0]]]  # each image spans all classes
    shared = depth_classes(depth, valid, 4, depth_range=(0.0, 4.0))  # bins of 1 m for both
    assert shared.tolist() == [[[3, 2, 1, 0]], [[3, 2, 2, 1]]]  # 2.5 m falls in the same class as 2 m


def test_interpretation_options_reach_the_total_and_are_checked():
    g = torch.Generator().manual_seed(5)
    depth, valid = _depth(2, 4, 4), torch.ones(2, 4, 4, dtype=torch.bool)
    queries, keys = torch.randn(2, 3, 2, 2, generator=g), torch.randn(2, 3, 2, 2, generator=g)
    common = dict(metric_depth=depth, relative_depth=1 / depth, scale_map=depth, shift_map=depth, image=torch.rand(2, 3, 4, 4),
                  depth=depth, valid=valid, queries=queries, keys=keys, max_depth=10.0, min_depth=1e-3)  # fmt: skip
    image_range = training_loss(LossOptions(), **common)["contrast"]
    dataset_range = training_loss(LossOptions(class_range="dataset"), **common)["contrast"]
    assert image_range.item() != dataset_range.item()
    assert training_loss(LossOptions(), **common, contrast_scale=0.0)["total"] < training_loss(LossOptions(), **common)["total"]
    for name, value in (("pseudo_average", "all"), ("contrast_negatives", "sum"), ("class_range", "global")):
        with pytest.raises(ValueError, match=f"{name} '{value}': expected one of"):
            LossOptions(**{name: value})
