"""Temporal smoothing of scale and shift maps: the formula, its time constant, resets, resuming."""

from __future__ import annotations

import math

import pytest
import torch

from tr2m_cli.errors import InputError
from tr2m_cli.sequences.frames import Position
from tr2m_cli.sequences.stabilize import StabilizeOptions, TemporalStabilizer, relative_level, smoothing_weight

ONES = torch.ones(2, 3)


def test_the_weight_of_a_new_frame_follows_the_time_constant():
    assert smoothing_weight(1.0, 1.0) == pytest.approx(1 - math.exp(-1))
    assert smoothing_weight(0.1, 0.5) == pytest.approx(1 - math.exp(-0.2))
    assert smoothing_weight(100.0, 1.0) == pytest.approx(1.0)
    assert smoothing_weight(0.0, 1.0) == 0.0


def test_smoothing_is_an_average_in_log_space():
    stabilizer = TemporalStabilizer(time_constant=1.0)
    first = stabilizer.update(torch.full((2, 3), 2.0), torch.full((2, 3), 0.5), ONES, time=0.0)
    assert torch.allclose(first[0], torch.full((2, 3), 2.0)) and torch.allclose(first[1], torch.full((2, 3), 0.5))
    scale, shift = stabilizer.update(torch.full((2, 3), 0.5), torch.full((2, 3), 2.0), ONES, time=1.0)
    alpha = 1 - math.exp(-1)
    # geometric interpolation: 2^(1-α) · 0.5^α
    assert scale[0, 0].item() == pytest.approx(2.0 ** (1 - alpha) * 0.5**alpha, rel=1e-5)
    assert shift[0, 0].item() == pytest.approx(0.5 ** (1 - alpha) * 2.0**alpha, rel=1e-5)


def test_a_step_in_scale_is_followed_within_a_few_time_constants():
    stabilizer = TemporalStabilizer(time_constant=5.0)  # frames
    stabilizer.update(torch.ones(1), torch.ones(1), torch.ones(1), time=0)
    values = [stabilizer.update(torch.full((1,), math.e), torch.ones(1), torch.ones(1), time=t)[0].item() for t in range(1, 16)]
    assert math.log(values[4]) == pytest.approx(1 - math.exp(-1), rel=1e-4)  # 63 % after τ
    assert math.log(values[14]) > 0.95  # 95 % after 3τ


def test_noise_is_divided_as_documented_and_a_cut_resets():
    torch.manual_seed(0)
    alpha = 1 - math.exp(-1 / 5)
    noise = [torch.exp(0.05 * torch.randn(64)) for _ in range(400)]
    stabilizer = TemporalStabilizer(time_constant=5.0)
    smoothed = [stabilizer.update(n, n, torch.ones(64), time=t)[0] for t, n in enumerate(noise)]
    raw_change = torch.stack([(b.log() - a.log()) for a, b in zip(noise, noise[1:])]).std()
    smooth_change = torch.stack([(b.log() - a.log()) for a, b in zip(smoothed[50:], smoothed[51:])]).std()
    assert (smooth_change / raw_change).item() == pytest.approx(alpha / math.sqrt(2 - alpha), rel=0.15)
    after_cut = stabilizer.update(torch.full((64,), 7.0), torch.full((64,), 3.0), torch.full((64,), 9.0), time=400, cut=True)
    assert torch.allclose(after_cut[0], torch.full((64,), 7.0)) and torch.allclose(after_cut[1], torch.full((64,), 3.0))


def test_the_relative_depths_level_is_smoothed_and_its_pattern_kept():
    """Depth Anything's D_r has an arbitrary scale per frame: a frame whose D_r is twice the last
    one's everywhere gets its scale map lowered so that A·D_r moves only by the smoothing weight."""
    pattern = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    assert relative_level(pattern).item() == 3.0  # median of the positive values
    assert relative_level(torch.zeros(2, 2)) is None
    stabilizer = TemporalStabilizer(time_constant=1.0)
    ones = torch.ones(2, 3)
    stabilizer.update(ones, ones, pattern, time=0.0)
    scale, shift = stabilizer.update(ones, ones, 2 * pattern, time=1.0)
    alpha = 1 - math.exp(-1)
    inverse_depth = scale * (2 * pattern) + shift
    assert torch.allclose(inverse_depth, 2**alpha * pattern + 1, rtol=1e-5)  # the pattern, at the smoothed level
    # a frame with no relative depth at all leaves the level alone
    scale, _ = stabilizer.update(ones, ones, torch.zeros(2, 3), time=2.0)
    assert torch.allclose(scale, ones)


def test_a_new_frame_size_starts_afresh():
    stabilizer = TemporalStabilizer(time_constant=5.0)
    stabilizer.update(torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2), time=0)
    scale, _ = stabilizer.update(torch.full((3, 3), 4.0), torch.ones(3, 3), torch.ones(3, 3), time=1)
    assert torch.allclose(scale, torch.full((3, 3), 4.0))


def test_a_saved_state_resumes_exactly():
    torch.manual_seed(1)
    maps = [(torch.rand(4, 5) + 0.5, torch.rand(4, 5) + 0.1, torch.rand(4, 5) * 3) for _ in range(10)]
    whole = TemporalStabilizer(0.3)
    expected = [whole.update(a, b, d, time=t * 0.1, index=t) for t, (a, b, d) in enumerate(maps)]
    first = TemporalStabilizer(0.3)
    for t, (a, b, d) in enumerate(maps[:6]):
        first.update(a, b, d, time=t * 0.1, index=t)
    state = first.state_dict()
    resumed = TemporalStabilizer(0.3)
    resumed.load_state_dict(state)
    assert resumed.index == 5
    for t, (a, b, d) in enumerate(maps[6:], start=6):
        scale, shift = resumed.update(a, b, d, time=t * 0.1, index=t)
        assert torch.allclose(scale, expected[t][0]) and torch.allclose(shift, expected[t][1])
    with pytest.raises(InputError):
        TemporalStabilizer(0.5).load_state_dict(state)


def test_time_constants_convert_between_seconds_and_frames():
    options = StabilizeOptions(time_constant=Position(0.5, "s"))
    assert options.tau_in("s", 30.0) == 0.5 and options.tau_in("frame", 30.0) == 15.0
    assert options.tau_in("frame", None) == 15.0  # the fallback rate, 30 fps
    assert StabilizeOptions(time_constant=Position(10, "frame")).tau_in("s", 20.0) == 0.5
    with pytest.raises(InputError):
        StabilizeOptions(time_constant=Position(0, "frame"))
