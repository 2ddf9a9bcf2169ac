"""TR2M's training losses (spec §4), each a small function on plain tensors.

    L = λ1·L_si + λ2·L_tp-si + λ3·L_soc + λ4·L_es        λ1..λ4 = 1, 0.5, 0.1, 0.01 (paper)

- `scale_invariant_log_loss`      L_si, Eigen's scale-invariant log loss against ground truth.
- `thresholded_pseudo_depth_loss` L_tp-si: per image, fit the frozen relative depth to the ground
  truth (closed-form least squares in inverse-depth space); where the fit is good (δ1 > ρ), the
  fitted depth supervises *every* pixel, including those without ground truth.
- `scale_contrast_loss`           L_soc: pixels of the same depth class should look alike, pixels
  of different classes not; classes come from `depth_classes`.
- `edge_aware_smoothness`         L_es: scale and shift maps smooth except at image edges.

Depth is in metres throughout. Shapes: maps [B, H, W], images [B, 3, H, W], features
[B, D, h, w]. Masks are bool; a term with nothing to supervise is an exact zero that still
belongs to the autograd graph (so distributed training sees every parameter used).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossOptions:
    """Weights and constants of the training loss. A term whose weight is 0 is switched off (not
    computed at all): the paper's ablations."""

    si_weight: float = 1.0  # λ1 (paper)
    pseudo_weight: float = 0.5  # λ2 (paper)
    contrast_weight: float = 0.1  # λ3 (paper)
    smoothness_weight: float = 0.01  # λ4 (paper)
    variance_focus: float = 0.15  # λ inside L_si (paper; the release hints at 0.6/1.0 per dataset)
    pseudo_threshold: float = 0.9  # ρ, the δ1 gate of L_tp-si (ours: the paper gives no value)
    scale_classes: int = 20  # |C| (paper)
    # Readings of the paper where it is silent (ours; docs/training.md, "Interpretations"):
    pseudo_average: str = "passing"  # L_tp-si: mean over the images that pass ρ, or "batch" (÷ batch size)
    contrast_negatives: str = "mean"  # S_n of Eq. 8: mean similarity to other-class keys, or "sum-exp" (InfoNCE)
    class_range: str = "image"  # depth classes: each image's own depth range, or "dataset" (the set's range)

    def __post_init__(self) -> None:
        for name in ("si_weight", "pseudo_weight", "contrast_weight", "smoothness_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: loss weights cannot be negative")
        if not 0.0 <= self.variance_focus <= 1.0:
            raise ValueError(f"variance_focus = {self.variance_focus}: must lie in [0, 1]")
        if not 0.0 <= self.pseudo_threshold <= 1.0:
            raise ValueError(f"pseudo_threshold = {self.pseudo_threshold}: a δ1 fraction in [0, 1]")
        if self.scale_classes < 2:
            raise ValueError(f"scale_classes = {self.scale_classes}: the contrast needs at least 2")
        for name, choices in INTERPRETATIONS.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} '{getattr(self, name)}': expected one of {', '.join(choices)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LossOptions":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


INTERPRETATIONS: dict[str, tuple[str, ...]] = {
    "pseudo_average": ("passing", "batch"),
    "contrast_negatives": ("mean", "sum-exp"),
    "class_range": ("image", "dataset"),
}
"""Choices for what the paper leaves open; the first of each is the default."""


def _zero_like_graph(*tensors: torch.Tensor) -> torch.Tensor:
    """0.0 that depends on `tensors`, so backward reaches their parameters with zero gradient."""
    return sum(t.sum() * 0.0 for t in tensors).float()


# -- L_si ------------------------------------------------------------------------------------------


def scale_invariant_log_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, variance_focus: float = 0.15
) -> torch.Tensor:
    """Eigen's scale-invariant log loss, `mean(ε²) − λ·mean(ε)²` with ε = ln pred − ln target,
    per image over its valid pixels, then averaged over images that have any.

    λ = 1 makes it blind to a global scale per image; λ = 0 is the plain squared log error.
    """
    valid = valid & (target > 0) & (pred > 0)
    count = valid.sum(dim=(-2, -1))
    used = count > 0
    if not used.any():
        return _zero_like_graph(pred)
    safe_pred = torch.where(valid, pred.float(), torch.ones_like(pred, dtype=torch.float32))
    safe_target = torch.where(valid, target.float(), torch.ones_like(target, dtype=torch.float32))
    error = (torch.log(safe_pred) - torch.log(safe_target)) * valid
    n = count.clamp(min=1).float()
    mean_square = (error**2).sum(dim=(-2, -1)) / n
    mean = error.sum(dim=(-2, -1)) / n
    per_image = mean_square - variance_focus * mean**2
    return per_image[used].mean()


# -- L_tp-si ---------------------------------------------------------------------------------------


def fit_inverse_depth(
    relative_depth: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image, the least-squares (α, β) with α·D_r + β ≈ 1/depth over valid pixels (spec §4,
    ours: inverse-depth space, so 1/(α·D_r + β) has the model's own form).

    Returns α [B], β [B] (float64, the 2×2 normal equations solved in closed form) and `ok` [B],
    False where the fit is undetermined (fewer than two valid pixels, or a constant D_r).
    """
    valid = valid & (depth > 0)
    r = torch.where(valid, relative_depth.double(), torch.zeros((), dtype=torch.float64, device=depth.device))
    t = torch.where(valid, 1.0 / depth.double().clamp(min=1e-12), torch.zeros_like(r))
    dims = (-2, -1)
    n = valid.sum(dim=dims).double()
    s_r, s_t = r.sum(dim=dims), t.sum(dim=dims)
    s_rr, s_rt = (r * r).sum(dim=dims), (r * t).sum(dim=dims)
    det = s_rr * n - s_r * s_r
    # A relative scale for "singular": det is a variance times n², compare it with its terms.
    ok = (n >= 2) & (det.abs() > 1e-12 * (s_rr * n).abs().clamp(min=1e-300))
    safe_det = torch.where(ok, det, torch.ones_like(det))
    alpha = torch.where(ok, (n * s_rt - s_r * s_t) / safe_det, torch.zeros_like(det))
    beta = torch.where(ok, (s_rr * s_t - s_r * s_rt) / safe_det, torch.zeros_like(det))
    return alpha, beta, ok


def pseudo_depth(
    relative_depth: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, max_depth: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """D_pseudo = 1/(α·D_r + β) [B, H, W] and where it is usable: α·D_r + β > 0 (a positive,
    finite depth) and, when given, no deeper than `max_depth` (ours: keeps a near-zero
    denominator from asking for kilometres)."""
    inverse = alpha.view(-1, 1, 1) * relative_depth.double() + beta.view(-1, 1, 1)
    usable = inverse > 0
    depth = 1.0 / torch.where(usable, inverse, torch.ones_like(inverse))
    if max_depth is not None:
        usable &= depth <= max_depth
    return depth.float(), usable


def delta1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per image, the fraction of valid pixels with max(pred/gt, gt/pred) < 1.25 [B] (0 where no
    pixel is valid)."""
    valid = valid & (target > 0) & (pred > 0)
    ratio = torch.maximum(pred / target.clamp(min=1e-12), target / pred.clamp(min=1e-12))
    hits = ((ratio < 1.25) & valid).sum(dim=(-2, -1)).float()
    return hits / valid.sum(dim=(-2, -1)).clamp(min=1).float()


@dataclass
class PseudoDepthLoss:
    loss: torch.Tensor
    passed: torch.Tensor  # [B] bool: images whose fit passed the δ1 gate


def thresholded_pseudo_depth_loss(
    pred: torch.Tensor,
    relative_depth: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    *,
    threshold: float = 0.9,
    variance_focus: float = 0.15,
    max_depth: float | None = None,
    average: str = "passing",
) -> PseudoDepthLoss:
    """L_tp-si: fit D_r to the ground truth per image; where δ1(D_pseudo, GT) > ρ, apply
    L_si(pred, D_pseudo) over all pixels where D_pseudo is usable (the point: dense supervision
    where the ground truth has holes). Images that fail the gate contribute nothing: `average`
    "passing" takes the mean over the images that pass, "batch" divides their sum by the batch
    size (so a batch where few pass pulls less)."""
    alpha, beta, ok = fit_inverse_depth(relative_depth.detach(), depth, valid)
    target, usable = pseudo_depth(relative_depth.detach(), alpha, beta, max_depth)
    passed = ok & (delta1(target, depth, valid & usable) * _fraction(valid & usable, valid) > threshold)
    if not passed.any():
        return PseudoDepthLoss(_zero_like_graph(pred), passed)
    loss = scale_invariant_log_loss(pred[passed], target[passed], usable[passed], variance_focus)
    if average == "batch":
        # L_si averages over the passing images that have usable pixels (all of them: the gate
        # needs some); back to a sum, then over the whole batch.
        loss = loss * passed.sum().float() / passed.numel()
    elif average != "passing":
        raise ValueError(f"average '{average}': expected passing or batch")
    return PseudoDepthLoss(loss, passed)


def _fraction(part: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
    """Per image |part| / |whole|: ground-truth pixels where the fit is unusable count as misses."""
    return part.sum(dim=(-2, -1)).float() / whole.sum(dim=(-2, -1)).clamp(min=1).float()


# -- L_soc -----------------------------------------------------------------------------------------


def depth_classes(
    depth: torch.Tensor,
    valid: torch.Tensor,
    num_classes: int = 20,
    grid: tuple[int, int] | None = None,
    depth_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Per image, depth → scale class in 0..|C|−1 (0 = farthest), −1 where there is no ground
    truth [B, H, W] (or [B, h, w] when `grid` is given).

    Classes split [d_min, d_max] into |C| equal bins: the image's valid depth range, or a fixed
    `depth_range` (e.g. the dataset's evaluation range, the same bins for every image). (The paper
    writes round((d_max − D)/(d_max − d_min)·|C|), which gives |C|+1 labels with half-width end
    bins; ours: floor and clamp, so exactly |C| classes.) With `grid`, depth is first averaged
    over the valid pixels of each feature cell (cells with none are −1), using the full-resolution
    range.
    """
    valid = valid & (depth > 0)
    big = torch.finfo(torch.float32).max
    d = depth.float()
    if depth_range is not None:
        d_min = torch.full((*d.shape[:-2], 1, 1), float(depth_range[0]), device=d.device)
        d_max = torch.full((*d.shape[:-2], 1, 1), float(depth_range[1]), device=d.device)
    else:
        d_min = torch.where(valid, d, torch.full_like(d, big)).amin(dim=(-2, -1), keepdim=True)
        d_max = torch.where(valid, d, torch.full_like(d, -big)).amax(dim=(-2, -1), keepdim=True)
    if grid is not None:
        weights = valid.float()[:, None]
        total = F.adaptive_avg_pool2d(d[:, None] * weights, grid)[:, 0]
        share = F.adaptive_avg_pool2d(weights, grid)[:, 0]
        valid = share > 0
        d = total / share.clamp(min=1e-12)
    span = (d_max - d_min).clamp(min=1e-12)
    labels = torch.floor((d_max - d) / span * num_classes).clamp(0, num_classes - 1).long()
    return torch.where(valid, labels, torch.full_like(labels, -1))


def scale_contrast_loss(
    queries: torch.Tensor,
    keys: torch.Tensor,
    query_classes: torch.Tensor,
    key_classes: torch.Tensor,
    negatives: str = "mean",
) -> torch.Tensor:
    """One level of the scale-oriented contrast (spec §4).

    For each query pixel i with a class: S_p = mean cosine similarity to the key pixels of its
    class, S_n = mean cosine similarity to key pixels of other classes, and
    ℓ_i = −log(exp S_p / (exp S_p + exp S_n)) = softplus(S_n − S_p). With `negatives="sum-exp"`
    the negatives enter one by one, as in InfoNCE: ℓ_i = −log(exp S_p / (exp S_p + Σ_j exp s_ij))
    over the other-class keys j. Averaged over query pixels that have both a positive and a
    negative key. queries, keys: [B, D, h, w]; classes [B, h, w] with −1 = ignore.
    """
    q = F.normalize(queries.float().flatten(2).transpose(1, 2), dim=-1)  # [B, N, D]
    k = F.normalize(keys.float().flatten(2).transpose(1, 2), dim=-1)  # [B, M, D]
    cq, ck = query_classes.flatten(1), key_classes.flatten(1)
    similarity = q @ k.transpose(1, 2)  # [B, N, M]
    key_ok = (ck >= 0)[:, None, :]
    same = (cq[:, :, None] == ck[:, None, :]) & key_ok
    other = (cq[:, :, None] != ck[:, None, :]) & key_ok
    n_same, n_other = same.sum(-1), other.sum(-1)
    usable = (cq >= 0) & (n_same > 0) & (n_other > 0)
    if not usable.any():
        return _zero_like_graph(queries)
    s_pos = (similarity * same).sum(-1) / n_same.clamp(min=1)
    if negatives == "sum-exp":
        s_neg = torch.logsumexp(similarity.masked_fill(~other, float("-inf")), dim=-1)
        s_neg = torch.where(n_other > 0, s_neg, torch.zeros_like(s_neg))
    elif negatives == "mean":
        s_neg = (similarity * other).sum(-1) / n_other.clamp(min=1)
    else:
        raise ValueError(f"negatives '{negatives}': expected mean or sum-exp")
    return F.softplus(s_neg - s_pos)[usable].mean()


def dual_level_contrast_loss(
    queries: torch.Tensor,
    keys: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    num_classes: int = 20,
    *,
    negatives: str = "mean",
    depth_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """L_soc: the contrast against keys of the same image and of another image of the batch
    (the batch rolled by one), averaged (ours: an equal mix of the two levels). Classes are
    computed on the features' grid (over each image's range, or the fixed `depth_range`)."""
    grid = tuple(queries.shape[-2:])
    classes = depth_classes(depth, valid, num_classes, grid=grid, depth_range=depth_range)
    same_image = scale_contrast_loss(queries, keys, classes, classes, negatives)
    if queries.shape[0] < 2:
        return same_image
    other_image = scale_contrast_loss(queries, keys.roll(1, dims=0), classes, classes.roll(1, dims=0), negatives)
    return 0.5 * (same_image + other_image)


# -- L_es ------------------------------------------------------------------------------------------


def edge_aware_smoothness(maps: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Godard et al.'s edge-aware smoothness: |∂map|·exp(−|∂I|) along x and y, averaged.

    Each map is divided by its per-image mean first (as Monodepth2 does, ours), so the term does
    not reward shrinking the map and means the same in metres or millimetres. maps [B, H, W],
    image [B, 3, H, W] in [0, 1].
    """
    m = maps.float()
    m = m / m.mean(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
    img = image.float()
    dx_map = (m[..., :, 1:] - m[..., :, :-1]).abs()
    dy_map = (m[..., 1:, :] - m[..., :-1, :]).abs()
    dx_img = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(dim=1)
    dy_img = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(dim=1)
    return (dx_map * torch.exp(-dx_img)).mean() + (dy_map * torch.exp(-dy_img)).mean()


# -- the total -------------------------------------------------------------------------------------


def training_loss(
    settings: LossOptions,
    *,
    metric_depth: torch.Tensor,
    relative_depth: torch.Tensor,
    scale_map: torch.Tensor,
    shift_map: torch.Tensor,
    image: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    queries: torch.Tensor | None = None,
    keys: torch.Tensor | None = None,
    max_depth: float | None = None,
    min_depth: float | None = None,
    contrast_scale: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The weighted sum and each enabled term (unweighted) by name: `total`, `si`, `pseudo`,
    `contrast`, `smoothness`, and `pseudo_gate` (fraction of images whose fit passed).
    `min_depth`, `max_depth`: the dataset's depth range (metres). `contrast_scale` multiplies the
    contrast's weight (0 before the contrast starts: computed, so every parameter stays in the
    graph, but not pulling)."""
    terms: dict[str, torch.Tensor] = {}
    total = _zero_like_graph(metric_depth)
    if settings.si_weight:
        terms["si"] = scale_invariant_log_loss(metric_depth, depth, valid, settings.variance_focus)
        total = total + settings.si_weight * terms["si"]
    if settings.pseudo_weight:
        pseudo = thresholded_pseudo_depth_loss(
            metric_depth,
            relative_depth,
            depth,
            valid,
            threshold=settings.pseudo_threshold,
            variance_focus=settings.variance_focus,
            max_depth=max_depth,
            average=settings.pseudo_average,
        )
        terms["pseudo"] = pseudo.loss
        terms["pseudo_gate"] = pseudo.passed.float().mean()
        total = total + settings.pseudo_weight * pseudo.loss
    if settings.contrast_weight:
        if queries is None or keys is None:
            raise ValueError("the contrast term is on but no query/key features were given")
        depth_range = None
        if settings.class_range == "dataset":
            if min_depth is None or max_depth is None:
                raise ValueError("class_range 'dataset' needs the dataset's min_depth and max_depth")
            depth_range = (min_depth, max_depth)
        terms["contrast"] = dual_level_contrast_loss(
            queries, keys, depth, valid, settings.scale_classes, negatives=settings.contrast_negatives, depth_range=depth_range
        )
        total = total + contrast_scale * settings.contrast_weight * terms["contrast"]
    if settings.smoothness_weight:
        terms["smoothness"] = edge_aware_smoothness(scale_map, image) + edge_aware_smoothness(shift_map, image)
        total = total + settings.smoothness_weight * terms["smoothness"]
    terms["total"] = total
    return terms



# The name before option classes took one suffix (Options); kept so existing code keeps working.
LossSettings = LossOptions
