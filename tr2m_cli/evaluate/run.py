"""Evaluating a model on a dataset under its protocol: the function `tr2m eval` wraps and the
training loop calls for validation.

Per image, as the reference does (spec §5–§6): optional KITTI benchmark crop of photo and ground
truth, optional first resize of the photo (and nearest resize of the ground truth, C3VD), the
network resize (bilinear, align_corners=True) to the protocol's input size, the model, the
prediction resized bilinearly (align_corners=True) to the ground truth and converted to metres
(`domain`), then `tr2m_cli.metrics`. No median scaling, no alignment; flip TTA only on request.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

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
    """One image's metrics (metres) and what went into them."""

    key: str
    caption: str
    valid_pixels: int
    metrics: dict[str, float]
    nonfinite_prediction_pixels: int = 0  # NaN/inf in the raw prediction (clamped before metrics)

    @property
    def finite(self) -> bool:
        return is_finite(self.metrics)

    @property
    def problem(self) -> str | None:
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

    @property
    def means(self) -> dict[str, float]:
        """Per-image averages over the images whose metrics are finite (the paper's numbers)."""
        return mean_metrics(row.metrics for row in self.rows)

    @property
    def evaluated(self) -> int:
        return sum(row.finite for row in self.rows)

    @property
    def nonfinite(self) -> list[ImageResult]:
        """Images left out of the means or whose prediction had NaN/inf: reported, never hidden."""
        return [row for row in self.rows if row.problem]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "title": self.title,
            "kind": self.kind,
            "split": self.split,
            "root": self.root,
            "images_in_split": self.total,
            "images_run": len(self.rows),
            "images_in_means": self.evaluated,
            "seconds": round(self.seconds, 3),
            "flip_tta": self.flip_tta,
            "captions": self.captions,
            "notes": list(self.notes),
            "protocol": self.protocol.to_dict(),
            "means": self.means,
            "flagged_images": [{"key": row.key, "problem": row.problem} for row in self.nonfinite],
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


def prepare_sample(sample, protocol: EvalProtocol, caption_line: int = 0) -> dict[str, Any]:
    """A DepthSample → the photo tensor the network resize starts from, the ground truth it is
    compared with, and its caption."""
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
    if protocol.image_resize is not None:
        image = resize_photo(image, protocol.image_resize)
    if not sample.captions:
        raise DatasetError(f"{sample.dataset} '{sample.key}': no caption (give the dataset captions)")
    if caption_line >= len(sample.captions):
        raise DatasetError(
            f"{sample.dataset} '{sample.key}': caption line {caption_line} asked for, the image has {len(sample.captions)}"
        )
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:  # PIL's arrays are read-only; torch wants to own a writable one
        image = image.copy()
    pixels = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
    return {
        "key": sample.key,
        "pixels": pixels,
        "depth": np.ascontiguousarray(depth),
        "valid": np.ascontiguousarray(valid),
        "caption": sample.captions[caption_line],
        "image": image,
        "window": window,
    }


class _Prepared:
    """The dataset seen through `prepare_sample` and the inference core's network input,
    indexable so a DataLoader's workers can run it."""

    def __init__(self, dataset, protocol: EvalProtocol, caption_line: int, policy) -> None:
        self.dataset, self.protocol, self.caption_line, self.policy = dataset, protocol, caption_line, policy

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from ..model.inference import prepare_photo

        item = prepare_sample(self.dataset[index], self.protocol, self.caption_line)
        # The photo as every path reads it (normalise, then bilinear align_corners=True to the
        # protocol's size): the reference's network input exactly.
        item["photo"] = prepare_photo(item["image"], self.policy)
        del item["pixels"]  # the full-size float copy: not needed once the network input is made
        item["index"] = index
        return item


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


# -- the model side ---------------------------------------------------------------------------


def network_size_policy(model, protocol: EvalProtocol):
    """The protocol's fixed input size, or the model's aspect-keeping policy."""
    from ..model.preprocess import SizePolicy

    if protocol.input_size is not None:
        return SizePolicy.fixed(*protocol.input_size)
    return model.size_policy


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
) -> DatasetResult:
    """Run `model` on `dataset` and score it under `protocol` (default: the dataset's preset).

    `limit`: the first N images only. `caption_line`: which caption of each image (0 at evaluation,
    as the paper). `num_workers`: background processes reading and resizing images. Predictions
    are saved as float32 metres (.npy, at the evaluated ground truth's size) under
    `predictions_dir/<key>.npy`; colour previews (photo | ground truth | prediction) as PNG under
    `previews_dir` for every `preview_every`-th image. The model's train/eval modes are restored.
    """
    from ..model.inference import DepthPredictor, DepthRequest

    protocol = protocol or dataset.protocol
    if batch_size < 1:
        raise DatasetError(f"batch size {batch_size}: must be at least 1")
    total = len(dataset)
    subset = dataset.select(range(min(limit, total))) if limit is not None else dataset
    policy = network_size_policy(model, protocol)
    predictor = DepthPredictor(model, batch_size=batch_size, size=policy, domain=protocol.domain, flip_tta=flip_tta)
    rows: list[tuple[int, ImageResult]] = []
    started = time.perf_counter()
    modes = {module: module.training for module in model.modules()}
    model.eval()
    bar = _progress_bar(len(subset), dataset.name, progress)
    requests = (
        DepthRequest(item["photo"], item["caption"], output_size=_output_size(item), tag=item, name=f"{dataset.name} '{item['key']}'")
        for item in _iterate(_Prepared(subset, protocol, caption_line, policy), num_workers)
    )
    try:
        for result in predictor.stream(requests):
            if result.prediction is None:
                raise result.exception or DatasetError(result.error)
            item, pred = result.request.tag, result.depth
            nonfinite = int(np.count_nonzero(~np.isfinite(pred)))
            window = item["window"]
            if window is not None:  # outside the benchmark window there is no prediction
                canvas = np.full(item["depth"].shape, np.nan, dtype=np.float32)
                canvas[window] = pred
                pred = canvas
            rows.append((item["index"], _score(item, pred, protocol, nonfinite)))
            _save_outputs(item, pred, protocol, item["index"], predictions_dir, previews_dir, preview_every)
            bar.update(1)
    finally:
        bar.close()
        for module, training in modes.items():
            module.training = training
    rows = [row for _, row in sorted(rows, key=lambda pair: pair[0])]
    return DatasetResult(
        dataset=dataset.name,
        title=dataset.title,
        kind=dataset.kind,
        split=dataset.split,
        root=str(dataset.root),
        protocol=protocol,
        rows=rows,
        total=total,
        seconds=time.perf_counter() - started,
        captions=dataset.captions_source.description,
        notes=[*dataset.notes, *([dataset.captions_source.notice] if dataset.captions_source.notice else [])],
        flip_tta=flip_tta,
    )


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
