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

from ..data import DepthSample, EvalProtocol
from ..errors import DatasetError, InputError
from ..evaluate import prepare_sample
from ..model.config import PATCH_SIZE, REFERENCE_SIZE
from ..model.preprocess import resize_to
from .augment import AugmentOptions, augment

GENERIC_RANGE = (1e-3, 1e3)
"""Depth range (metres) used for a dataset that brings no protocol of its own."""


@dataclass(frozen=True)
class TrainingSource:
    """One dataset in the mix, with the protocol that says how its samples are prepared."""

    name: str
    dataset: Sequence[DepthSample]
    protocol: EvalProtocol  # input crop and resizes, depth range (metres), network input size
    colour_jitter: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.protocol.input_size or REFERENCE_SIZE

    @property
    def max_depth(self) -> float:
        return self.protocol.max_depth

    @property
    def geometry(self) -> dict[str, Any]:
        """What decides the encoders' input besides the photo and a flip (for the feature cache)."""
        protocol = self.protocol
        return {"size": list(self.size), "input_crop": protocol.input_crop,
                "image_resize": list(protocol.image_resize) if protocol.image_resize else None}  # fmt: skip


def make_sources(
    datasets: Mapping[str, Sequence[DepthSample]],
    *,
    input_size: tuple[int, int] | None,
    augment_settings: AugmentOptions,
) -> list[TrainingSource]:
    """A dataset is prepared for training exactly as its evaluation protocol prepares it for
    `tr2m eval` (`dataset.protocol`: KITTI's benchmark crop, the reference's first resizes, the
    depth range, the network input size 434×560 / 350×1204 / …), the input size overridable for
    all. A dataset without a protocol (your own list of samples) is used whole, with ground truth
    between 1 mm and 1 km, at 434×560."""
    sources = []
    for name, dataset in datasets.items():
        protocol = getattr(dataset, "protocol", None)
        if not isinstance(protocol, EvalProtocol):
            protocol = EvalProtocol(name=name, min_depth=GENERIC_RANGE[0], max_depth=GENERIC_RANGE[1])
        size = tuple(input_size or protocol.input_size or REFERENCE_SIZE)
        if len(size) != 2 or any(s <= 0 or s % PATCH_SIZE for s in size):
            raise DatasetError(f"{name}: input size {size} — both sides must be positive multiples of {PATCH_SIZE}")
        if len(dataset) == 0:
            raise DatasetError(f"{name}: the training split holds no samples")
        try:
            # Training needs photo and ground truth cropped alike (the authors' KITTI protocol), and
            # normalised photos (augmentation works on [0, 1] pixels).
            protocol = protocol.replace(input_size=(int(size[0]), int(size[1])), crop_ground_truth=True, normalize=True)
        except InputError as exc:
            raise DatasetError(f"{name}: {exc}") from None
        sources.append(
            TrainingSource(
                name=name,
                dataset=dataset,
                protocol=protocol,
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
    rounds = _rounds(sizes, batch_size, world_size, steps_per_epoch)

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


def _rounds(sizes: Sequence[int], batch_size: int, world_size: int, steps_per_epoch: int | None) -> int:
    rounds = max(-(-size // world_size) // batch_size for size in sizes)
    if steps_per_epoch is not None:
        rounds = min(rounds, -(-steps_per_epoch // len(sizes)))
    return rounds


def epoch_length(
    sizes: Sequence[int], batch_size: int, *, world_size: int = 1, steps_per_epoch: int | None = None
) -> int:
    """Steps (batches per process) in an epoch: as many rounds as the largest dataset's shard
    fills batches, each round one batch of every dataset; `steps_per_epoch` caps it. E.g. the
    paper's mix at batch 8 on one GPU: VOID's ~47K frames give ~5,900 rounds, ~23,600 steps."""
    rounds = _rounds(sizes, batch_size, world_size, steps_per_epoch)
    steps = rounds * len(sizes)
    return min(steps, steps_per_epoch) if steps_per_epoch is not None else steps


# -- one prepared sample -------------------------------------------------------------------------------


class TrainingExamples(torch.utils.data.Dataset):
    """Loads a `SampleRef`: the sample resized to its network size, a random caption line,
    augmentation, and (with a feature cache) the frozen encoders' outputs if already cached."""

    def __init__(self, sources: Sequence[TrainingSource], settings: AugmentOptions, cache=None) -> None:
        self.sources = list(sources)
        self.settings = settings
        self.cache = cache

    def __len__(self) -> int:
        return sum(len(source.dataset) for source in self.sources)

    def __getitem__(self, ref: SampleRef) -> dict[str, Any]:
        source = self.sources[ref.source]
        sample = source.dataset[ref.index]
        generator = torch.Generator().manual_seed(ref.seed)
        caption_index = int(torch.randint(max(1, len(sample.captions)), (1,), generator=generator))
        prepared = prepare_sample(sample, source.protocol, caption_index)  # the eval geometry
        image = resize_to(prepared["pixels"], source.size)  # bilinear, align_corners (spec §2)
        depth = torch.from_numpy(prepared["depth"]).float()
        protocol = source.protocol
        valid = torch.from_numpy(prepared["valid"]).bool() & torch.isfinite(depth)
        valid &= (depth > protocol.min_depth) & (depth < protocol.max_depth)
        depth, valid = resize_ground_truth(torch.where(valid, depth, torch.zeros_like(depth)), valid, source.size)
        out = augment(image, depth, valid, generator, self.settings, colour_jitter=source.colour_jitter, dataset=source.name)
        features = None
        if self.cache is not None:
            features = self.cache.load(source.name, sample.key, out.flipped, source.geometry, sample.captions)
        return {
            "image": out.image.clamp(0, 1),
            "depth": out.depth,
            "valid": out.valid,
            "caption": prepared["caption"],
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
