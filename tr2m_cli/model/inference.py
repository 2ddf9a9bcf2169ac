"""The one inference core: photos and captions in, depth in metres at each photo's size out.

`TR2M.predict` / `predict_batch`, `tr2m convert`, `tr2m eval` and training's encoder pass all run
through here, so a photo gets the same depth whichever way it comes in. Callers keep only what is
their own: convert its streaming and writing, eval its crops, ranges and flip-TTA choice, training
its augmentation and feature cache.

1. **Photo → network input** (`prepare_photo`, one decode policy). Files are read upright (EXIF
   rotation), in any mode, as 8-bit RGB. A photo at least four times the network size in both
   directions is reduced to between two and four times it: first by the largest power of two up
   to 8 that allows (JPEG files: by libjpeg while decoding, far faster than decoding 12 MP;
   anything else: a box average), then by a box average over a whole factor if it is still four
   times as large. Then RGB / 255, ImageNet normalisation and a bilinear (align_corners=True)
   resize to the network size: for photos below four times the network size (every benchmark
   image) this is exactly the reference evaluation's input.
2. **Batching by network size** (`DepthPredictor.stream`): photos wait in one bucket per network
   size; a full bucket runs, and the fullest runs early when too many wait, so a stream of mixed
   shapes keeps moving in bounded memory.
3. **Caption embeddings** (`CaptionEmbeddings`): each distinct caption is encoded once while it
   stays among the most recently used.
4. **The network**, with out-of-memory halving: a batch that does not fit is split in two and
   retried, later batches are smaller, and a photo that does not fit alone fails alone.
5. **Back to the photo**: depth (and on request the relative depth, scale and shift maps)
   resized bilinearly (align_corners=True) to the photo's size, or a size the caller names, and
   converted to metres.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..io.images import DEFAULT_MAX_PIXELS
from .preprocess import ImageLike, SizePolicy, as_size_policy, normalize_and_resize, resize_to, to_float_tensor

if TYPE_CHECKING:
    from .tr2m import TR2M

KEEP_ABOVE_NETWORK = 2
"""A photo is reduced only to a size that keeps at least this many times the network size in both
directions, so the final bilinear resize never skips more than every other pixel, while a 48 MP
photo is never held as a full-size float tensor."""
CAPTION_CACHE_SIZE = 4096
BIG_PHOTO_PIXELS = 24_000_000
"""Photos decoded at full size above this (a 100 MP PNG holds ~600 MB while converted) take one
of the caller's `big_photo_slots` first, so decoding threads hold few of them at once."""
EXIF_ORIENTATION = 0x0112


# -- photo → network input --------------------------------------------------------------------


@dataclass
class NetworkInput:
    """A photo ready for the network, and what its outputs need to know about it."""

    pixels: torch.Tensor | None  # [3, h, w] ImageNet-normalised at network_size (None once used)
    size: tuple[int, int]  # upright (H, W) of the photo: the outputs' size
    network_size: tuple[int, int]
    rgb: np.ndarray | None = None  # uint8 HxWx3 the network input was made from (when kept)
    exif_focal_35mm: float | None = None  # from the file's EXIF, when it has one


def reduction_factor(size: tuple[int, int], network_size: tuple[int, int]) -> int:
    """The largest whole factor that keeps a photo of `size` at least KEEP_ABOVE_NETWORK times
    `network_size` in both directions (1: the photo is used as it is)."""
    keep_h, keep_w = (KEEP_ABOVE_NETWORK * n for n in network_size)
    return max(1, min(size[0] // keep_h, size[1] // keep_w))


def first_reduction(size: tuple[int, int], network_size: tuple[int, int]) -> int:
    """The power of two (1, 2, 4 or 8) a photo is reduced by first: the scales libjpeg can decode
    a JPEG at, so JPEG files and decoded photos are reduced on the same schedule."""
    factor = reduction_factor(size, network_size)
    return next(step for step in (8, 4, 2, 1) if factor >= step)


def _reduce_rgb8(rgb: np.ndarray, size: tuple[int, int], network_size: tuple[int, int]) -> np.ndarray:
    """The one reduction schedule on an 8-bit photo of original `size` (module docstring)."""
    from PIL import Image

    step = first_reduction(size, network_size)
    if step > 1 and rgb.shape[:2] == tuple(size):  # not already taken by libjpeg while decoding
        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).reduce(step))
    factor = reduction_factor(rgb.shape[:2], network_size)
    if factor > 1:
        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).reduce(factor))
    return rgb


def _reduce_float(tensor: torch.Tensor, network_size: tuple[int, int]) -> torch.Tensor:
    """The same schedule on a float [3, H, W] photo: box averages, without rounding to 8 bits."""
    step = first_reduction(tuple(tensor.shape[-2:]), network_size)
    if step > 1:
        tensor = F.avg_pool2d(tensor[None], step, ceil_mode=True)[0]
    factor = reduction_factor(tuple(tensor.shape[-2:]), network_size)
    if factor > 1:
        tensor = F.avg_pool2d(tensor[None], factor, ceil_mode=True)[0]
    return tensor


def prepare_photo(
    image: ImageLike,
    policy: SizePolicy,
    *,
    keep_rgb: bool = False,
    big_photo_slots: threading.Semaphore | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> NetworkInput:
    """Any photo tr2m accepts (a path, a PIL image, an HxWx3 / HxW array, a [3, H, W] tensor) →
    its network input under the one decode policy (module docstring, step 1).

    `keep_rgb` keeps the 8-bit photo the input was made from (reduced as above), e.g. for point
    cloud colours. Files that are unreadable, not regular files, or over `max_pixels` (None: no
    limit) raise InputError naming the file."""
    from ..io import storage

    if storage.is_url(image):  # a photo on an object store (io.storage): read like a file
        return _read_file(storage.location(image), policy, keep_rgb, big_photo_slots, max_pixels)
    if isinstance(image, (str, Path)):
        return _read_file(Path(image), policy, keep_rgb, big_photo_slots, max_pixels)
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image, without importing PIL
        from ..io.images import pil_to_rgb
        from ..io.intrinsics import exif_focal_35mm

        photo = _from_rgb8(pil_to_rgb(image), policy, keep_rgb)
        photo.exif_focal_35mm = exif_focal_35mm(image)
        return photo
    rgb8 = as_rgb8(image)
    if rgb8 is not None:
        return _from_rgb8(rgb8, policy, keep_rgb)
    # 16-bit and float photos keep their precision: the same box average, without rounding.
    tensor = to_float_tensor(image)
    size = _checked_size(tensor.shape[-2], tensor.shape[-1])
    network_size = policy.network_size(*size)
    reduced = _reduce_float(tensor, network_size)
    pixels = normalize_and_resize(reduced[None], network_size)[0]
    rgb = (reduced * 255).round().byte().permute(1, 2, 0).cpu().numpy() if keep_rgb else None
    return NetworkInput(pixels, size, network_size, rgb)


def prepare_image(
    image: ImageLike, policy: SizePolicy | None = None, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """One photo → (network input [1, 3, h, w] on `device`, original (H, W))."""
    photo = prepare_photo(image, policy or SizePolicy())
    return photo.pixels[None].to(device), photo.size


def _checked_size(height: int, width: int) -> tuple[int, int]:
    if height < 1 or width < 1:
        raise InputError(f"image of size {height}x{width} is empty")
    return int(height), int(width)


def as_rgb8(image) -> np.ndarray | None:
    """8-bit photos as HxWx3 uint8 (grey repeated, alpha dropped); None for anything else."""
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            return None
        return image.detach().cpu().permute(1, 2, 0).numpy()
    array = np.asarray(image)
    if array.dtype != np.uint8:
        return None
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return array[:, :, :3]
    return None  # to_float_tensor names the bad shape


def _from_rgb8(rgb: np.ndarray, policy: SizePolicy, keep_rgb: bool, size: tuple[int, int] | None = None) -> NetworkInput:
    """An upright 8-bit photo (perhaps already decoded at reduced scale: then `size` is the
    photo's own) → its network input."""
    size = size or _checked_size(*rgb.shape[:2])
    network_size = policy.network_size(*size)
    rgb = _reduce_rgb8(rgb, size, network_size)
    pixels = normalize_and_resize(to_float_tensor(rgb)[None], network_size)[0]
    return NetworkInput(pixels, size, network_size, rgb if keep_rgb else None)


def _read_file(
    path: Path, policy: SizePolicy, keep_rgb: bool, big_photo_slots: threading.Semaphore | None, max_pixels: int | None
) -> NetworkInput:
    from ..io.images import open_image, pil_to_rgb
    from ..io.intrinsics import exif_focal_35mm

    with contextlib.ExitStack() as big_photo_slot:  # held until the full-size copy is reduced
        with open_image(path, max_pixels=max_pixels) as pil:
            stored_width, stored_height = pil.size
            try:
                orientation = int(pil.getexif().get(EXIF_ORIENTATION, 1))
            except (TypeError, ValueError, OSError, SyntaxError):
                orientation = 1
            turned = orientation in (5, 6, 7, 8)
            size = (stored_width, stored_height) if turned else (stored_height, stored_width)
            if min(size) < 1:
                raise InputError(f"{path}: empty image ({size[1]}×{size[0]})")
            network_size = policy.network_size(*size)
            keep = tuple(min(s, KEEP_ABOVE_NETWORK * n) for s, n in zip(size, network_size))
            drafted = pil.format == "JPEG" and first_reduction(size, network_size) > 1
            if big_photo_slots is not None and not drafted and size[0] * size[1] > BIG_PHOTO_PIXELS:
                big_photo_slots.acquire()
                big_photo_slot.callback(big_photo_slots.release)
            if drafted:
                # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never below the size asked for: the
                # same power of two `first_reduction` gives.
                pil.draft(None, (keep[0], keep[1]) if turned else (keep[1], keep[0]))
            focal = exif_focal_35mm(pil)
            pil.load()
            rgb = pil_to_rgb(pil)
        if not drafted and rgb.shape[:2] != size:
            size = rgb.shape[:2]  # the decoded size is the truth (a tag stored after the pixels)
        photo = _from_rgb8(rgb, policy, keep_rgb, size=tuple(int(s) for s in size))
    photo.exif_focal_35mm = focal
    return photo


# -- the network side ---------------------------------------------------------------------------


def check_domain(model: "TR2M", domain: str | None) -> None:
    """A domain the captions know or the model's folder names (`domain_units`); anything else is
    a typo that would silently leave the units unconverted."""
    from ..io.captions import DOMAINS

    known = dict.fromkeys([*DOMAINS, *model.spec.domain_units])
    if domain is not None and domain not in known:
        raise InputError(f"domain {domain!r}: expected one of {', '.join(known)} (or None)")


class StageTimes:
    """Seconds per stage, summed over threads (callers may decode and write in parallel pools)."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] += seconds

    @contextlib.contextmanager
    def measure(self, stage: str, sync: torch.device | None = None) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if sync is not None and sync.type == "cuda":
            torch.cuda.synchronize(sync)
        self.add(stage, time.perf_counter() - start)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {stage: round(seconds, 4) for stage, seconds in self._seconds.items()}


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class CaptionEmbeddings:
    """Caption → CLIP embedding, each distinct caption encoded once while it stays among the
    `max_size` most recently used (C3VD has 8 captions for thousands of frames; a captioned
    folder has one per photo, which must not grow without bound)."""

    def __init__(self, model: "TR2M", max_size: int = CAPTION_CACHE_SIZE) -> None:
        self.model = model
        self.max_size = max(1, int(max_size))
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        """[N, T] float32 on the model's device, one row per caption."""
        captions = [str(c) for c in captions]
        new = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if new:
            for caption, embed in zip(new, self.model.encode_text(new)):
                self._cache[caption] = embed
        rows = []
        for caption in captions:
            self._cache.move_to_end(caption)
            rows.append(self._cache[caption])
        embeds = torch.stack(rows)
        while len(self._cache) > self.max_size:
            self._cache.popitem(last=False)
        return embeds


@dataclass
class EncoderOutputs:
    """What the frozen encoders say about a batch of network inputs."""

    image_tokens: torch.Tensor  # [B, h·w, C] in the encoder's precision
    grid: tuple[int, int]
    relative_depth: torch.Tensor  # [B, H, W] float32
    text_embeds: torch.Tensor | None  # [B, T] float32, when captions were given


def encoder_outputs(
    model: "TR2M", pixels: torch.Tensor, captions: Sequence[str] | torch.Tensor | None = None
) -> EncoderOutputs:
    """Run DINOv2 and Depth Anything on normalised `pixels` [B, 3, H, W] at network size, and CLIP
    on `captions` (or take ready embeddings). `TR2M.forward` and training's frozen features."""
    text = model.encode_text(captions) if captions is not None and not isinstance(captions, torch.Tensor) else captions
    tokens, grid = model.encode_image(pixels)
    return EncoderOutputs(tokens, grid, model.estimate_relative_depth(pixels), text)


@dataclass
class Prediction:
    """One photo's result at its output size, as float32 numpy arrays.

    `depth` is metres. The maps are given with `return_maps`: `relative_depth` is the frozen
    model's D_r, and `scale_map` / `shift_map` are A and B expressed for metres, so that
    depth = 1 / (A · D_r + B) holds in metres (up to the resize to the photo's size).
    `intrinsics` is the camera (`io.intrinsics.Intrinsics`, pixels of `depth`) and `image` the
    photo as uint8 RGB (perhaps reduced, same aspect), when `TR2M.predict` made it: then
    `points()` and the `tr2m_cli.save_*` helpers need nothing else."""

    depth: np.ndarray
    relative_depth: np.ndarray | None = None
    scale_map: np.ndarray | None = None
    shift_map: np.ndarray | None = None
    intrinsics: Any = None
    image: np.ndarray | None = None

    def points(self, colors: bool = False, options: Any = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The point cloud in metres, camera frame (x right, y down, z forward): [N, 3] float32,
        with `colors=True` also [N, 3] uint8 from the photo. Flying pixels at depth edges are
        dropped, and `options` (`io.pointcloud.PointCloudOptions`: stride, max points, voxels,
        outliers) applies, exactly as `tr2m_cli.save_ply` and `tr2m convert` write it."""
        from ..io.pointcloud import PointCloudOptions
        from ..io.save import points

        return points(self, colors=colors, options=options or PointCloudOptions())


@dataclass
class DepthRequest:
    """One photo to run. `output_size` (H, W) defaults to the photo's own; `tag` is the caller's
    and comes back untouched; `name` says which photo in error messages."""

    photo: NetworkInput
    caption: str
    output_size: tuple[int, int] | None = None
    tag: Any = None
    name: str = ""


@dataclass
class DepthResult:
    request: DepthRequest
    prediction: Prediction | None
    error: str | None = None  # one line, naming the photo
    exception: BaseException | None = None  # what was raised, for callers that re-raise
    seconds: float = 0.0  # this photo's share of its batch's model time

    @property
    def depth(self) -> np.ndarray | None:
        return None if self.prediction is None else self.prediction.depth


class DepthPredictor:
    """TR2M on photos: batching by network size, caption cache, out-of-memory halving, resizing
    to each photo and units (module docstring). One per run; `batch_size` shrinks after an
    out-of-memory and stays small.

        predictor = DepthPredictor(model, batch_size=8, domain="indoor")
        photo = predictor.prepare("kitchen.jpg")
        for result in predictor.stream(DepthRequest(photo, "A kitchen.") for ...):
            result.depth  # float32 metres at the photo's size

    `size`: a token budget, a fixed (H, W) or a SizePolicy (default: the model's). `domain`:
    converts models that answer in millimetres on some scenes (surgical) to metres. `flip_tta`:
    average with the mirrored photo's prediction (not used by the paper). `stage_timing`:
    synchronise the device around each stage so `times` are exact (slower on GPUs).
    `adjust(requests, output)`: sees each batch's network-size `Tr2mOutput` before it is resized,
    batches in the order they run, and returns it changed (a clip's temporal smoothing,
    `sequences.engine.ClipSmoother`); a batch retried in halves after running out of memory is
    seen again.
    """

    def __init__(
        self,
        model: "TR2M",
        *,
        batch_size: int = 4,
        size: SizePolicy | int | tuple[int, int] | None = None,
        domain: str | None = None,
        return_maps: bool = False,
        flip_tta: bool = False,
        caption_cache_size: int = CAPTION_CACHE_SIZE,
        times: StageTimes | None = None,
        stage_timing: bool = False,
        adjust: Callable[[Sequence[DepthRequest], Any], Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch size {batch_size}: must be at least 1")
        if adjust is not None and flip_tta:
            raise InputError("flip-TTA averages two passes; adjusting the maps of one is not defined")
        check_domain(model, domain)
        self.model = model
        self.batch_size = int(batch_size)
        self.policy = as_size_policy(size, model.size_policy)
        self.metres_per_unit = model.spec.metres_per_output_unit(domain)
        self.return_maps = return_maps
        self.flip_tta = flip_tta
        self.captions = CaptionEmbeddings(model, caption_cache_size)
        self.times = times or StageTimes()
        self._sync = model.device if stage_timing else None
        self.adjust = adjust
        self.out_of_memory_events = 0

    def prepare(self, image: ImageLike, **kwargs) -> NetworkInput:
        """`prepare_photo` under this predictor's size policy."""
        return prepare_photo(image, self.policy, **kwargs)

    # -- running ----------------------------------------------------------------------------

    def predict(
        self, images: Iterable[ImageLike], captions: Iterable[str], cameras: Sequence[Any] | None = None
    ) -> list[Prediction]:
        """Photos and their captions → one Prediction each, in order. Photos are read as the
        batches need them, so a long list is never all in memory as network inputs. Raises what
        a photo's failure raised. With `cameras` (one per photo, as `io.intrinsics.camera_for_photo`
        takes them; None entries: EXIF, else the default) each Prediction also carries its
        intrinsics and the photo's colours."""
        from ..io.intrinsics import camera_for_photo

        def requests() -> Iterator[DepthRequest]:
            for index, (image, caption) in enumerate(zip(images, captions)):
                name = str(image) if isinstance(image, (str, Path)) else f"image {index}"
                yield DepthRequest(self.prepare(image, keep_rgb=cameras is not None), caption, tag=index, name=name)

        results: dict[int, Prediction] = {}
        for result in self.stream(requests()):
            if result.prediction is None:
                raise result.exception or RuntimeError(result.error)
            if cameras is not None:
                photo, prediction = result.request.photo, result.prediction
                height, width = prediction.depth.shape
                prediction.intrinsics = camera_for_photo(cameras[result.request.tag], height, width, photo.exif_focal_35mm)
                prediction.image = photo.rgb
            results[result.request.tag] = result.prediction
        return [results[i] for i in range(len(results))]

    @torch.inference_mode()
    def stream(self, requests: Iterable[DepthRequest], *, max_waiting: int | None = None) -> Iterator[DepthResult]:
        """Results for a stream of photos, batch by batch, as they complete (not in input order;
        `tag` says which is which). At most `max_waiting` photos (default max(16, 4 × batch
        size)) wait for their bucket to fill."""
        buckets: OrderedDict[tuple[int, int], list[DepthRequest]] = OrderedDict()

        def take(size: tuple[int, int]) -> list[DepthRequest]:
            bucket = buckets[size]
            batch, rest = bucket[: self.batch_size], bucket[self.batch_size :]
            if rest:
                buckets[size] = rest
            else:
                del buckets[size]
            return batch

        for request in requests:
            size = request.photo.network_size
            buckets.setdefault(size, []).append(request)
            if len(buckets[size]) >= self.batch_size:
                yield from self.run_batch(take(size))
            limit = max_waiting or max(16, 4 * self.batch_size)
            while sum(len(b) for b in buckets.values()) > limit:
                yield from self.run_batch(take(max(buckets, key=lambda s: len(buckets[s]))))
        while buckets:
            yield from self.run_batch(take(next(iter(buckets))))

    @torch.inference_mode()
    def run_batch(self, requests: Sequence[DepthRequest]) -> list[DepthResult]:
        """Photos of one network size → their results. Never raises for a photo's failure (an
        interrupt still propagates); out of memory splits the batch."""
        if not requests:
            return []
        start = time.perf_counter()
        try:
            predictions = self._forward(requests)
        except Exception as exc:  # noqa: BLE001 - one batch's failure must not end the run
            if is_out_of_memory(exc):
                self.out_of_memory_events += 1
                self._free_memory()
                if len(requests) > 1:
                    half = len(requests) // 2
                    self.batch_size = max(1, min(self.batch_size, half))
                    return self.run_batch(requests[:half]) + self.run_batch(requests[half:])
                h, w = requests[0].photo.network_size
                message = f"out of memory at network size {h}x{w} even alone: try a smaller --resolution or --device cpu"
            else:
                detail = (str(exc).strip().splitlines() or [""])[0]
                message = f"model failed ({type(exc).__name__}{': ' + detail if detail else ''})"
            return [
                DepthResult(r, None, f"{r.name}: {message}" if r.name else message, exc) for r in requests
            ]
        share = (time.perf_counter() - start) / len(requests)
        return [DepthResult(r, p, seconds=share) for r, p in zip(requests, predictions)]

    def _forward(self, requests: Sequence[DepthRequest]) -> list[Prediction]:
        model, sync, times = self.model, self._sync, self.times
        with times.measure("text", sync):
            text = self.captions([r.caption for r in requests])
        with times.measure("transfer", sync):
            pixels = torch.stack([r.photo.pixels for r in requests]).to(model.device, non_blocking=True)
        names = ("metric_depth", "relative_depth", "scale_map", "shift_map") if self.return_maps else ("metric_depth",)
        with self._stage_timers():
            out = model(pixels, text)
            if self.adjust is not None:
                out = self.adjust(requests, out)
            maps = {name: getattr(out, name) for name in names}
            if self.flip_tta:
                mirrored = model(pixels.flip(-1), text)
                maps = {name: 0.5 * (m.float() + getattr(mirrored, name).float().flip(-1)) for name, m in maps.items()}
        with times.measure("upsample", sync):
            return [self._finish(maps, row, r.output_size or r.photo.size) for row, r in enumerate(requests)]

    def _finish(self, maps: dict[str, torch.Tensor], row: int, size: tuple[int, int]) -> Prediction:
        """One photo's maps at the network size → float32 numpy at `size`, in metres."""
        factor = self.metres_per_unit
        # A and B for metres: depth_m = factor / (A·D + B) = 1 / ((A/factor)·D + B/factor).
        scales = {"metric_depth": factor, "scale_map": 1.0 / factor, "shift_map": 1.0 / factor}
        arrays = {}
        for name, tensor in maps.items():
            resized = resize_to(tensor[row : row + 1].float(), tuple(size))[0]
            if scales.get(name, 1.0) != 1.0:
                resized = resized * scales[name]
            arrays[name] = resized.cpu().numpy().astype(np.float32, copy=False)
        return Prediction(
            depth=arrays["metric_depth"],
            relative_depth=arrays.get("relative_depth"),
            scale_map=arrays.get("scale_map"),
            shift_map=arrays.get("shift_map"),
        )

    @contextlib.contextmanager
    def _stage_timers(self) -> Iterator[None]:
        """With stage timing, time the image encoder, the depth model and the head apart (through
        forward hooks, so the model is still called as a whole); without, the network as one."""
        if self._sync is None:
            with self.times.measure("network"):
                yield
            return
        sync, handles = self._sync, []
        for stage, attribute in (("image_encoder", "image_encoder"), ("relative_depth", "depth_model"), ("head", "head")):
            module = getattr(self.model, attribute, None)
            if not isinstance(module, torch.nn.Module):
                continue
            started: list[float] = []

            def before(_module, _args, started=started) -> None:
                if sync.type == "cuda":
                    torch.cuda.synchronize(sync)
                started.append(time.perf_counter())

            def after(_module, _args, _output, stage=stage, started=started) -> None:
                if sync.type == "cuda":
                    torch.cuda.synchronize(sync)
                self.times.add(stage, time.perf_counter() - started.pop())

            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _free_memory(self) -> None:
        if self.model.device.type == "cuda":
            torch.cuda.empty_cache()
