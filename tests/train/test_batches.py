"""Mixing, sharding and sample preparation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tr2m_cli.data import DepthSample, EvalProtocol
from tr2m_cli.errors import DatasetError
from tr2m_cli.train.augment import AugmentOptions
from tr2m_cli.train.batches import TrainingExamples, collate, epoch_schedule, make_sources
from tr2m_cli.train.synthetic import SyntheticScenes


def test_datasets_take_turns_one_batch_each_and_the_largest_is_seen_once():
    schedule = epoch_schedule([10, 4, 7], 2, epoch=0, seed=0)
    assert [batch[0].source for batch in schedule] == [0, 1, 2] * 5  # 10 // 2 = 5 rounds
    assert all(len(batch) == 2 and len({r.source for r in batch}) == 1 for batch in schedule)
    largest = [r.index for batch in schedule if batch[0].source == 0 for r in batch]
    assert sorted(largest) == list(range(10))  # one full pass, no repeats
    small = [r.index for batch in schedule if batch[0].source == 1 for r in batch]
    assert len(small) == 10 and set(small) == set(range(4))  # cycled, reshuffled


def test_schedule_is_deterministic_per_epoch_and_capped():
    a = epoch_schedule([9, 9], 3, epoch=1, seed=5)
    assert a == epoch_schedule([9, 9], 3, epoch=1, seed=5)
    assert a != epoch_schedule([9, 9], 3, epoch=2, seed=5)
    assert len({r.seed for batch in a for r in batch}) == 18  # every sample its own seed
    assert len(epoch_schedule([9, 9], 3, epoch=1, seed=5, steps_per_epoch=4)) == 4


def test_processes_split_each_dataset_like_a_distributed_sampler():
    per_rank = [epoch_schedule([10], 2, epoch=0, seed=0, rank=r, world_size=3) for r in range(3)]
    assert len({len(s) for s in per_rank}) == 1  # same number of steps everywhere
    seen = [r.index for schedule in per_rank for batch in schedule for r in batch]
    # 10 padded to 12 → 4 per rank → 2 batches of 2 each: all 10 seen, two of them twice.
    assert len(seen) == 12 and set(seen) == set(range(10))


def test_a_dataset_too_small_for_a_batch_is_a_clear_error():
    with pytest.raises(DatasetError, match="tiny: 3 training samples cannot fill a batch of 2 on each of 4"):
        epoch_schedule([3], 2, epoch=0, seed=0, world_size=4, names=["tiny"])


class _Ramp(list):
    protocol = EvalProtocol(name="ramp", min_depth=1.0, max_depth=5.0, input_size=(28, 42))


def _ramp_dataset() -> _Ramp:
    depth = np.tile(np.linspace(0.5, 6.0, 60, dtype=np.float32), (40, 1))  # columns 0.5 … 6 m
    valid = np.ones_like(depth, dtype=bool)
    valid[:, :3] = False
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = 255
    captions = ["first line", "second line", "third line"]
    return _Ramp([DepthSample(image=image, depth=depth, valid=valid, captions=captions, key="k0", dataset="ramp")])


def test_sample_is_resized_to_its_protocol_size_with_the_range_applied():
    sources = make_sources({"ramp": _ramp_dataset()}, input_size=None, augment_settings=AugmentOptions.off())
    assert sources[0].size == (28, 42) and (sources[0].protocol.min_depth, sources[0].max_depth) == (1.0, 5.0)
    example = TrainingExamples(sources, AugmentOptions.off())[epoch_schedule([1], 1, epoch=0, seed=0)[0][0]]
    assert example["image"].shape == (3, 28, 42) and example["depth"].shape == example["valid"].shape == (28, 42)
    depth, valid = example["depth"], example["valid"]
    assert ((depth[valid] > 1.0) & (depth[valid] < 5.0)).all()  # outside the range: not used
    assert valid[:, 0].sum() == 0 and valid.any()
    # Nearest-neighbour: every kept value is one of the original column depths.
    originals = torch.from_numpy(np.linspace(0.5, 6.0, 60, dtype=np.float32))
    assert torch.isin(depth[valid], originals).all()
    assert example["caption"] in ["first line", "second line", "third line"]


def test_caption_line_is_random_per_sample_seed_but_repeatable():
    sources = make_sources({"ramp": _ramp_dataset()}, input_size=None, augment_settings=AugmentOptions.off())
    examples = TrainingExamples(sources, AugmentOptions.off())
    refs = [r for epoch in range(12) for batch in epoch_schedule([1], 1, epoch=epoch, seed=0) for r in batch]
    lines = [examples[r]["caption"] for r in refs]
    assert len(set(lines)) == 3
    assert lines == [examples[r]["caption"] for r in refs]


def test_collate_stacks_tensors_and_keeps_lists():
    scenes = SyntheticScenes(4, size=(28, 42))
    sources = make_sources({"s": scenes}, input_size=(28, 42), augment_settings=AugmentOptions())
    examples = TrainingExamples(sources, AugmentOptions())
    batch = collate([examples[r] for r in epoch_schedule([4], 4, epoch=0, seed=0)[0]])
    assert batch["image"].shape == (4, 3, 28, 42) and batch["valid"].dtype == torch.bool
    assert len(batch["caption"]) == 4 and batch["features"] == [None] * 4


def test_input_sizes_must_be_multiples_of_14_and_datasets_not_empty():
    with pytest.raises(DatasetError, match="multiples of 14"):
        make_sources({"s": SyntheticScenes(2)}, input_size=(30, 42), augment_settings=AugmentOptions())
    with pytest.raises(DatasetError, match="no samples"):
        make_sources({"s": SyntheticScenes(0)}, input_size=None, augment_settings=AugmentOptions())


def test_epoch_length_matches_the_schedule_and_the_papers_mix():
    from tr2m_cli.train.batches import epoch_length

    for sizes, batch, world, cap in (([12, 8], 4, 1, None), ([9, 30, 5], 2, 2, None), ([12, 8], 4, 1, 3), ([40, 40], 4, 1, 5)):
        schedule = epoch_schedule(sizes, batch, epoch=0, seed=0, world_size=world, steps_per_epoch=cap)
        assert epoch_length(sizes, batch, world_size=world, steps_per_epoch=cap) == len(schedule)
    # NYUv2 24,231, KITTI 23,158, VOID ~47,248, C3VD ~7,400 training frames at batch 8 (docs/training.md).
    assert epoch_length([24_231, 23_158, 47_248, 7_400], 8) == 4 * 5_906
    assert epoch_length([24_231, 23_158, 47_248, 7_400], 8, steps_per_epoch=12_750) == 12_750
