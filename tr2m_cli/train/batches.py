"""From datasets to training batches: which samples, in which order, prepared how.

Mixing (paper / release): one batch per dataset in turn — NYU, KITTI, VOID, C3VD, NYU, … — so a
batch never mixes datasets (each keeps its own input size and depth range). An epoch lasts until
the largest dataset has been seen once; smaller ones are reshuffled and cycled meanwhile (ours).

Order and randomness are pure functions of (seed, epoch, rank): each process of a DDP run takes
its own shard of every dataset (as `DistributedSampler` does: shuffle, pad to a multiple of the
process count, take every N-th), and each sample carries its own seed for its caption line and
augmentation. So a run gives the same batches whatever the number of loader workers, and a
resumed run repeats exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..data.base import DepthSample
from ..errors import DatasetError
from ..model.config import PATCH_SIZE, REFERENCE_SIZE
from ..model.preprocess import resize_to, to_float_tensor
from .augment import AugmentSettings, augment


@dataclass(frozen=True)
class TrainingSource:
    """One dataset in the mix, with what training needs from its protocol."""

    name: str
    dataset: Sequence[DepthSample]
    size: tuple[int, int]  # network input (H, W), multiples of 14
    min_depth: float | None = None  # metres; ground truth outside (min, max) is not used
    max_depth: float | None = None
    colour_jitter: bool = False


def make_sources(
    datasets: Mapping[str, Sequence[DepthSample]],
    *,
    input_size: tuple[int, int] | None,
    augment_settings: AugmentSettings,
) -> list[TrainingSource]:
    """Each dataset's input size and depth range come from its eval protocol (`dataset.protocol`,
    the reference's sizes: 434×560, 350×1204, …) unless `input_size` overrides them all."""
    sources = []
    for name, dataset in datasets.items():
        protocol = getattr(dataset, "protocol", None)
        size = tuple(input_size or getattr(protocol, "input_size", None) or REFERENCE_SIZE)
        if len(size) != 2 or any(s <= 0 or s % PATCH_SIZE for s in size):
            raise DatasetError(f"{name}: input size {size} — both sides must be positive multiples of {PATCH_SIZE}")
        if len(dataset) == 0:
            raise DatasetError(f"{name}: the training split holds no samples")
        sources.append(
            TrainingSource(
                name=name,
                dataset=dataset,
                size=(int(size[0]), int(size[1])),
                min_depth=getattr(protocol, "min_depth", None),
                max_depth=getattr(protocol, "max_depth", None),
                colour_jitter=name.lower() in augment_settings.jitter_datasets,
            )
        )
    return sources


# -- the schedule ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRef:
    """Which sample to load, and the seed of its caption choice and augmentation."""

    source: int
    index: int
    seed: int


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, the same on every platform and Python version."""
    digest = hashlib.blake2b(",".join(str(int(p)) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _shard(order: list[int], rank: int, world_size: int) -> list[int]:
    padded = order + order[: (-len(order)) % world_size]
    return padded[rank::world_size]


def epoch_schedule(
    sizes: Sequence[int],
    batch_size: int,
    *,
    epoch: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    steps_per_epoch: int | None = None,
    names: Sequence[str] | None = None,
) -> list[list[SampleRef]]:
    """This process's batches for one epoch, datasets taking turns batch by batch."""
    names = list(names or [f"dataset {i}" for i in range(len(sizes))])
    shard_sizes = [-(-size // world_size) for size in sizes]
    for name, size, shard in zip(names, sizes, shard_sizes):
        if shard < batch_size:
            raise DatasetError(
                f"{name}: {size} training samples cannot fill a batch of {batch_size} on each of "
                f"{world_size} process(es); lower --batch-size"
            )
    rounds = max(shard // batch_size for shard in shard_sizes)
    if steps_per_epoch is not None:
        rounds = min(rounds, -(-steps_per_epoch // len(sizes)))

    def stream(source: int, count: int) -> list[int]:
        indices: list[int] = []
        cycle = 0
        while len(indices) < count:
            generator = torch.Generator().manual_seed(derive_seed(seed, epoch, source, cycle))
            order = torch.randperm(sizes[source], generator=generator).tolist()
            indices += _shard(order, rank, world_size)
            cycle += 1
        return indices[:count]

    streams = [stream(s, rounds * batch_size) for s in range(len(sizes))]
    batches = []
    for r in range(rounds):
        for s in range(len(sizes)):
            step = len(batches)
            members = streams[s][r * batch_size : (r + 1) * batch_size]
            batches.append(
                [SampleRef(s, i, derive_seed(seed, epoch, step, rank, k)) for k, i in enumerate(members)]
            )
    return batches[:steps_per_epoch] if steps_per_epoch is not None else batches


# -- one prepared sample -------------------------------------------------------------------------------


class TrainingExamples(torch.utils.data.Dataset):
    """Loads a `SampleRef`: the sample resized to its network size, a random caption line,
    augmentation, and (with a feature cache) the frozen encoders' outputs if already cached."""

    def __init__(self, sources: Sequence[TrainingSource], settings: AugmentSettings, cache=None) -> None:
        self.sources = list(sources)
        self.settings = settings
        self.cache = cache

    def __len__(self) -> int:
        return sum(len(source.dataset) for source in self.sources)

    def __getitem__(self, ref: SampleRef) -> dict[str, Any]:
        source = self.sources[ref.source]
        sample = source.dataset[ref.index]
        generator = torch.Generator().manual_seed(ref.seed)
        if not sample.captions:
            raise DatasetError(f"{source.name}: sample {sample.key} has no caption")
        caption_index = int(torch.randint(len(sample.captions), (1,), generator=generator))
        image = resize_to(to_float_tensor(sample.image), source.size)  # bilinear, align_corners (spec §2)
        depth = torch.from_numpy(sample.depth).float()
        valid = torch.from_numpy(sample.valid).bool() & torch.isfinite(depth) & (depth > 0)
        if source.min_depth is not None:
            valid &= depth > source.min_depth
        if source.max_depth is not None:
            valid &= depth < source.max_depth
        depth, valid = resize_ground_truth(torch.where(valid, depth, torch.zeros_like(depth)), valid, source.size)
        out = augment(image, depth, valid, generator, self.settings, colour_jitter=source.colour_jitter)
        features = None
        if self.cache is not None:
            features = self.cache.load(source.name, sample.key, out.flipped, source.size, sample.captions)
        return {
            "image": out.image.clamp(0, 1),
            "depth": out.depth,
            "valid": out.valid,
            "caption": sample.captions[caption_index],
            "captions": list(sample.captions),
            "caption_index": caption_index,
            "key": sample.key,
            "source": ref.source,
            "flipped": out.flipped,
            "features": features,
        }


def resize_ground_truth(
    depth: torch.Tensor, valid: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-neighbour resampling: never blends a depth with its neighbour across an edge or
    with an invalid pixel's placeholder."""
    if tuple(depth.shape) == tuple(size):
        return depth, valid
    depth = F.interpolate(depth[None, None], size=size, mode="nearest-exact")[0, 0]
    valid = F.interpolate(valid[None, None].float(), size=size, mode="nearest-exact")[0, 0] > 0.5
    return depth, valid


def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep strings, keys and cached features as lists."""
    batch: dict[str, Any] = {}
    for name in examples[0]:
        values = [example[name] for example in examples]
        batch[name] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return batch
