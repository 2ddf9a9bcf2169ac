"""Evaluating a model on a dataset under its protocol: the function `tr2m eval` wraps and the
training loop calls for validation.

Per image, as the reference does (spec §5–§6): optional KITTI benchmark crop of photo and ground
truth, optional first resize of the photo (and nearest resize of the ground truth, C3VD), the
network resize (bilinear, align_corners=True) to the protocol's input size, the model, the
prediction resized bilinearly (align_corners=True) to the ground truth and converted to metres
(`domain`), then `tr2m_cli.metrics`. No median scaling, no alignment; flip TTA only on request.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ..data.protocol import EvalProtocol, kb_window
from ..errors import DatasetError
from ..metrics import METRICS, image_metrics, is_finite, mean_metrics

if TYPE_CHECKING:
    import torch

    from ..data.dataset import DepthDataset
    from ..model.tr2m import TR2M


@dataclass
class ImageResult:
    """One image's metrics (metres) and what went into them; or, when the image could not be
    read or scored, why (`error`): such a row is kept and reported, never dropped."""

    key: str
    caption: str
    valid_pixels: int
    metrics: dict[str, float]
    nonfinite_prediction_pixels: int = 0  # NaN/inf in the raw prediction (clamped before metrics)
    error: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # e.g. SUN RGB-D's depth decoding
    index: int = -1  # position in the evaluated samples (rows are reported in this order)

    @classmethod
    def failure(cls, key: str, error: str, index: int = -1, caption: str = "") -> "ImageResult":
        return cls(key, caption, 0, {m: math.nan for m in METRICS}, error=error, index=index)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def finite(self) -> bool:
        return not self.failed and is_finite(self.metrics)

    @property
    def status(self) -> str:
        """scored (in the means), flagged (in the means, but look), not scored, or failed."""
        if self.failed:
            return "failed"
        if not self.finite:
            return "not scored"
        return "flagged" if self.problem else "scored"

    @property
    def problem(self) -> str | None:
        if self.error is not None:
            return self.error
        if self.valid_pixels == 0:
            return "no ground-truth pixels inside the range and crop"
        if not self.finite:
            return "metrics are not finite"
        if self.nonfinite_prediction_pixels:
            return f"{self.nonfinite_prediction_pixels} non-finite prediction pixels (clamped as the protocol says)"
        return None

    def to_row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "caption": self.caption,
            "valid_pixels": self.valid_pixels,
            "nonfinite_prediction_pixels": self.nonfinite_prediction_pixels,
            **self.metrics,
        }


@dataclass
class DatasetResult:
    """A dataset's evaluation: per-image rows, their means, and the images that need a look."""

    dataset: str
    title: str
    kind: str
    split: str
    root: str
    protocol: EvalProtocol
    rows: list[ImageResult]
    total: int  # images in the split, before any limit
    seconds: float = 0.0
    captions: str = ""
    notes: list[str] = field(default_factory=list)
    flip_tta: bool = False
    planned: int | None = None  # images this run set out to evaluate (the split, or the first N)
    interrupted: bool = False  # stopped part-way: the rows are what finished
    differences: list[str] = field(default_factory=list)  # how this row's protocol differs from the paper's

    @property
    def means(self) -> dict[str, float]:
        """Per-image averages over the images whose metrics are finite (the paper's numbers)."""
        return mean_metrics(row.metrics for row in self.rows if not row.failed)

    @property
    def evaluated(self) -> int:
        """Images in the means."""
        return sum(row.finite for row in self.rows)

    @property
    def attempted(self) -> int:
        return self.total if self.planned is None else self.planned

    @property
    def limited(self) -> bool:
        return self.attempted < self.total

    @property
    def failed(self) -> list[ImageResult]:
        """Images that could not be read or scored (a missing or broken file)."""
        return [row for row in self.rows if row.failed]

    @property
    def nonfinite(self) -> list[ImageResult]:
        """Images left out of the means or whose prediction had NaN/inf: reported, never hidden."""
        return [row for row in self.rows if row.problem]

    def decodings(self) -> dict[str, dict[str, int]]:
        """Per-frame choices counted over the rows, e.g. {"depth_encoding": {"rotated": 5050}}."""
        counts: dict[str, dict[str, int]] = {}
        for row in self.rows:
            for name, value in row.notes.items():
                counts.setdefault(name, {}).setdefault(value, 0)
                counts[name][value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "title": self.title,
            "kind": self.kind,
            "split": self.split,
            "root": self.root,
            "images_in_split": self.total,
            "images_attempted": self.attempted,
            "images_run": len(self.rows),
            "images_in_means": self.evaluated,
            "images_failed": len(self.failed),
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "flip_tta": self.flip_tta,
            "captions": self.captions,
            "notes": list(self.notes),
            "protocol": self.protocol.to_dict(),
            "protocol_differences_from_paper": list(self.differences),
            "per_frame_choices": self.decodings(),
            "means": self.means,
            "flagged_images": [
                {"key": row.key, "status": row.status, "problem": row.problem} for row in self.nonfinite
            ],
        }


# -- preparing one sample (runs in data-loading workers) ------------------------------------------


def nearest_resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenCV-style nearest neighbour (source index = floor(dst · src/dst)), as the reference
    resizes C3VD's ground truth."""
    height, width = array.shape[:2]
    rows = np.minimum((np.arange(size[0]) * (height / size[0])).astype(np.int64), height - 1)
    cols = np.minimum((np.arange(size[1]) * (width / size[1])).astype(np.int64), width - 1)
    return array[rows[:, None], cols[None, :]]


def resize_photo(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear with antialiasing (PIL), as the reference's first resize to 480×640."""
    from PIL import Image

    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_pixels(pixels: "torch.Tensor", size: tuple[int, int]) -> "torch.Tensor":
    """[3, H, W] float → [3, size]: bilinear with antialiasing, in float, as torchvision's Resize
    does on a tensor (the reference's first resize of HyperSim and DIODE, after normalising)."""
    import torch.nn.functional as F

    if tuple(pixels.shape[-2:]) == tuple(size):
        return pixels
    return F.interpolate(pixels[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0]


def prepare_sample(sample, protocol: EvalProtocol, caption_line: int = 0, *, pixels: bool = True) -> dict[str, Any]:
    """A DepthSample → the photo tensor the network resize starts from, the ground truth it is
    compared with, and its caption. `pixels=False`: no tensor ("pixels" is None), for a caller
    that makes the network input from the 8-bit image (see `_pixels_are_the_photo`)."""
    import torch

    image, depth, valid = sample.image, sample.depth, sample.valid
    window = None  # where the prediction goes in a ground truth kept whole
    if protocol.input_crop == "kb":
        window = kb_window(image.shape[:2])
        image = image[window]
        if protocol.crop_ground_truth:
            depth, valid, window = depth[window], valid[window], None
        else:
            inside = np.zeros_like(valid)
            inside[window] = True
            valid = valid & inside
    if protocol.depth_resize is not None:
        depth, valid = nearest_resize(depth, protocol.depth_resize), nearest_resize(valid, protocol.depth_resize)
    if protocol.image_resize is not None and protocol.image_resize_on == "photo":
        image = resize_photo(image, protocol.image_resize)
    if not sample.captions:
        raise DatasetError(f"{sample.dataset} '{sample.key}': no caption (give the dataset captions)")
    if caption_line >= len(sample.captions):
        raise DatasetError(
            f"{sample.dataset} '{sample.key}': caption line {caption_line} asked for, the image has {len(sample.captions)}"
        )
    image = np.ascontiguousarray(image)
    tensor = None
    if pixels:
        if not image.flags.writeable:  # PIL's arrays are read-only; torch wants to own a writable one
            image = image.copy()
        tensor = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        if protocol.image_resize is not None and protocol.image_resize_on == "tensor":
            tensor = resize_pixels(tensor, protocol.image_resize)
            image = tensor.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()  # for previews
        if not protocol.normalize:
            # The network's input normalisation is affine per channel and the resizes are linear, so
            # handing it x·std + mean gives it exactly the raw [0, 1] photo (the authors' iBims input).
            from ..model.config import IMAGENET_MEAN, IMAGENET_STD

            tensor = tensor * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    return {
        "key": sample.key,
        "pixels": tensor,
        "depth": np.ascontiguousarray(depth),
        "valid": np.ascontiguousarray(valid),
        "caption": sample.captions[caption_line],
        "image": image,
        "window": window,
        "notes": {k: str(v) for k, v in sample.extras.items() if k in PER_FRAME_NOTES},
    }


def _pixels_are_the_photo(protocol: EvalProtocol) -> bool:
    """Whether `prepare_sample`'s pixels are exactly its 8-bit image / 255 (no float resize, no
    undoing of the normalisation)."""
    resized_as_tensor = protocol.image_resize is not None and protocol.image_resize_on == "tensor"
    return protocol.normalize and not resized_as_tensor


PER_FRAME_NOTES = ("depth_encoding",)
"""Sample extras that record a choice made per frame; kept in per_image.csv and results.json."""


class _Prepared:
    """The dataset seen through `prepare_sample` and the inference core's network input (made
    here, in the data-loading workers), indexable so a DataLoader's workers can run it.
    A sample that cannot be read or prepared becomes a failure record (its key and why), so one
    bad file never stops the others, in a worker process or not."""

    def __init__(self, dataset, protocol: EvalProtocol, caption_line: int, policy) -> None:
        self.dataset, self.protocol, self.caption_line, self.policy = dataset, protocol, caption_line, policy

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from ..model.inference import prepare_photo

        try:
            # The network input as every path makes it (normalise, then bilinear align_corners=True
            # to the protocol's size): the reference's input exactly. From the 8-bit photo when the
            # pixels are just that photo (no tensor is made then), so a huge one is reduced as
            # `predict` reduces it.
            from_photo = _pixels_are_the_photo(self.protocol)
            item = prepare_sample(self.dataset[index], self.protocol, self.caption_line, pixels=not from_photo)
            pixels = item.pop("pixels")
            item["photo"] = prepare_photo(item["image"] if from_photo else pixels, self.policy)
        except Exception as exc:  # noqa: BLE001 - any reader's failure is this sample's, reported
            return {"index": index, "key": _key_of(self.dataset, index), "error": _describe(exc)}
        item["index"] = index
        return item


def _key_of(dataset, index: int) -> str:
    entries = getattr(dataset, "entries", None)
    return entries[index].key if entries is not None else str(index)


def _describe(exc: Exception) -> str:
    from ..errors import Tr2mError

    text = str(exc) if isinstance(exc, Tr2mError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _iterate(prepared: _Prepared, num_workers: int) -> Iterator[dict[str, Any]]:
    if num_workers <= 0:
        for index in range(len(prepared)):
            yield prepared[index]
        return
    from torch.utils.data import DataLoader

    # batch_size=None hands items over one by one; the identity collate keeps numpy arrays numpy.
    yield from DataLoader(
        prepared, batch_size=None, shuffle=False, num_workers=num_workers, prefetch_factor=2, collate_fn=_as_is
    )


def _as_is(item):
    return item


# -- the model side ----------------------------------------------------------------------------


def _output_size(item: dict) -> tuple[int, int]:
    """The prediction is resized to the ground truth, or to the benchmark window inside it."""
    window = item["window"]
    if window is None:
        return tuple(item["depth"].shape)
    return (window[0].stop - window[0].start, window[1].stop - window[1].start)


def evaluate_dataset(
    model: "TR2M",
    dataset: "DepthDataset",
    *,
    protocol: EvalProtocol | None = None,
    batch_size: int = 4,
    limit: int | None = None,
    flip_tta: bool = False,
    progress: bool = True,
    caption_line: int = 0,
    num_workers: int = 0,
    predictions_dir: str | Path | None = None,
    previews_dir: str | Path | None = None,
    preview_every: int = 1,
    on_start: Callable[[DatasetResult], None] | None = None,
) -> DatasetResult:
    """Run `model` on `dataset` and score it under `protocol` (default: the dataset's preset).

    `limit`: the first N images only. `caption_line`: which caption of each image (0 at evaluation,
    as the paper). `num_workers`: background processes reading and resizing images. Predictions
    are saved as float32 metres (.npy, at the evaluated ground truth's size) under
    `predictions_dir/<key>.npy`; colour previews (photo | ground truth | prediction) as PNG under
    `previews_dir` for every `preview_every`-th image. The model's train/eval modes are restored.

    An image whose files cannot be read, or that cannot be scored, is a failed row with the
    reason; the others are scored. `on_start` receives the result before the first image: its rows
    grow as images finish, so a caller still holds the finished work if the run is interrupted.
    """
    from ..model.inference import DepthPredictor, DepthRequest

    protocol = protocol or dataset.protocol
    if batch_size < 1:
        raise DatasetError(f"batch size {batch_size}: must be at least 1")
    total = len(dataset)
    subset = dataset.select(range(min(limit, total))) if limit is not None else dataset
    result = DatasetResult(
        dataset=dataset.name,
        title=dataset.title,
        kind=dataset.kind,
        split=dataset.split,
        root=str(dataset.root),
        protocol=protocol,
        rows=[],
        total=total,
        captions=dataset.captions_source.description,
        notes=[*dataset.notes, *([dataset.captions_source.notice] if dataset.captions_source.notice else [])],
        flip_tta=flip_tta,
        planned=len(subset),
    )
    if on_start is not None:
        on_start(result)
    rows = result.rows
    # The inference core batches by network size, caches captions, halves batches on
    # out-of-memory, resizes to the ground truth and converts to metres; crops, ranges and the
    # flip-TTA choice are this protocol's.
    # The protocol's fixed input size, or the model's aspect-keeping policy.
    predictor = DepthPredictor(model, batch_size=batch_size, size=protocol.input_size, domain=protocol.domain, flip_tta=flip_tta)
    policy = predictor.policy
    started = time.perf_counter()
    modes = {module: module.training for module in model.modules()}
    model.eval()
    bar = _progress_bar(len(subset), dataset.name, progress)

    def requests() -> Iterator[DepthRequest]:
        for item in _iterate(_Prepared(subset, protocol, caption_line, policy), num_workers):
            if "error" in item:
                rows.append(ImageResult.failure(item["key"], item["error"], item["index"]))
                bar.update(1)
                continue
            yield DepthRequest(item["photo"], item["caption"], _output_size(item), tag=item, name=f"{dataset.name} '{item['key']}'")

    def score(item: dict, pred: np.ndarray) -> None:
        nonfinite = int(np.count_nonzero(~np.isfinite(pred)))
        window = item["window"]
        if window is not None:  # outside the benchmark window there is no prediction
            canvas = np.full(item["depth"].shape, np.nan, dtype=np.float32)
            canvas[window] = pred
            pred = canvas
        try:
            scored = _score(item, pred, protocol, nonfinite)
        except Exception as exc:  # noqa: BLE001 - e.g. a ground truth of another size: this image's
            rows.append(ImageResult.failure(item["key"], _describe(exc), item["index"], item["caption"]))
            return
        rows.append(scored)
        _save_outputs(item, pred, protocol, item["index"], predictions_dir, previews_dir, preview_every)

    try:
        for done in predictor.stream(requests()):
            item = done.request.tag
            if done.prediction is None:  # the model failed on it (even alone, if out of memory)
                rows.append(ImageResult.failure(item["key"], done.error, item["index"], item["caption"]))
            else:
                score(item, done.depth)
            bar.update(1)
    except BaseException:
        result.interrupted = True
        raise
    finally:
        bar.close()
        for module, training in modes.items():
            module.training = training
        rows.sort(key=lambda row: row.index)  # failures are recorded as met, batches when they run
        result.seconds = time.perf_counter() - started
    return result


def _score(item: dict, pred: np.ndarray, protocol: EvalProtocol, nonfinite: int) -> ImageResult:
    metrics, pixels = image_metrics(
        pred,
        item["depth"],
        min_depth=protocol.min_depth,
        max_depth=protocol.max_depth,
        crop_mask=protocol.crop_mask(item["depth"].shape),
        valid=item["valid"],
    )
    return ImageResult(
        key=item["key"],
        caption=item["caption"],
        valid_pixels=pixels,
        metrics=metrics,
        nonfinite_prediction_pixels=nonfinite,
        notes=dict(item.get("notes", {})),
        index=item["index"],
    )


def _save_outputs(item, pred, protocol, index, predictions_dir, previews_dir, every) -> None:
    from ..io.atomic import atomic_path

    if predictions_dir is not None:
        with atomic_path(Path(predictions_dir) / f"{item['key']}.npy") as temp:
            np.save(temp, pred)
    if previews_dir is not None and every > 0 and index % every == 0:
        from .preview import write_preview

        write_preview(Path(previews_dir) / f"{item['key']}.png", item["image"], item["depth"], item["valid"], pred, protocol)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, name: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False)


__all__ = ["DatasetResult", "ImageResult", "evaluate_dataset", "prepare_sample", "METRICS"]
