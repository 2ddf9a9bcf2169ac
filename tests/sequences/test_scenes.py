"""Scene cuts: a jump to another shot is found, motion within a shot is not."""

from __future__ import annotations

import numpy as np

from tr2m_cli.sequences.scenes import SceneCutDetector, SceneCutOptions
from tr2m_cli.sequences.testing import moving_pattern


def test_cuts_between_shots_and_none_within_them():
    shot_a = moving_pattern(20, 48, 64, seed=0)
    shot_b = [255 - frame[:, ::-1] for frame in moving_pattern(20, 48, 64, seed=1)]  # another look entirely
    detector = SceneCutDetector()
    cuts = [i for i, frame in enumerate(shot_a + shot_b) if detector.is_cut(i, frame)]
    assert cuts == [20] and detector.cuts == [20]


def test_cuts_closer_than_the_minimum_scene_are_ignored():
    dark, bright = np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 255, np.uint8)
    flashes = [dark, bright, dark, bright] + [dark] * 20 + [bright]
    detector = SceneCutDetector(SceneCutOptions(min_scene_frames=15))
    assert [i for i, frame in enumerate(flashes) if detector.is_cut(i, frame)] == [15 + 9]  # only the last
    # source-frame gaps count (with --every 20, every kept frame may start a scene)
    sparse = SceneCutDetector()
    assert [sparse.is_cut(i * 20, frame) for i, frame in enumerate([dark, bright, dark])] == [False, True, True]


def test_scenes_are_represented_by_their_middle_frame():
    from tr2m_cli.sequences.frames import Frame
    from tr2m_cli.sequences.scenes import Scene, find_scenes

    shot_a = moving_pattern(20, 48, 64, seed=0)
    shot_b = [255 - frame[:, ::-1] for frame in moving_pattern(11, 48, 64, seed=1)]
    frames = [Frame(i * 2, None, rgb) for i, rgb in enumerate(shot_a + shot_b)]  # --every 2
    assert find_scenes(frames) == [Scene(0, 38, 20), Scene(40, 60, 50)]
    assert find_scenes(frames[:5]) == [Scene(0, 8, 4)]
