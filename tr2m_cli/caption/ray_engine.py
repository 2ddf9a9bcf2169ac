"""`caption --engine ray`: photos captioned by a vision-language model on many Ray workers.

    from tr2m_cli.caption.ray_engine import caption_ray
    summary = caption_ray(["s3://lab/frames"], CaptionOptions(out="s3://lab/captions.jsonl"),
                          captioner="florence-2-large", workers=8, gpus_per_worker=1)

Everything but the captioning itself is `caption_photos`: the same discovery, skipping of photos
that already have a caption, destinations, summary and exit codes. `PhotoCaptioner` is the
stateful callable each worker runs (the captioner loads once per worker; a photo that cannot be
read or captioned gives an error, never an exception), usable from Daft or Spark as well.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..cluster import RayResources, Workers, ray_session, run_rows
from ..io import storage
from ..io.inputs import InputImage
from .registry import DEFAULT_CAPTIONER


class PhotoCaptioner:
    """Loads a captioner once per worker, then captions batches of rows (`input`, `path`,
    `output_stem`) → columns `input`, `caption` ("" when none) and `error` ("" when none)."""

    def __init__(self, captioner: Any = DEFAULT_CAPTIONER, *, device: str = "auto", precision: str = "auto",
                 batch_size: int = 4, max_new_tokens: int | None = None, decode_workers: int = 2,
                 max_pixels: int | None = None) -> None:  # fmt: skip
        from .captioner import load_captioner

        self.captioner = load_captioner(captioner, device=device, precision=precision)
        self.batch_size, self.max_new_tokens, self.decode_workers = batch_size, max_new_tokens, decode_workers
        self.max_pixels = max_pixels

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        from ..jobs.rows import batch_rows, row_photo
        from .run import generate_captions

        images = [row_photo(row) for row in batch_rows(batch)]
        results: dict[str, tuple[str, str]] = {}

        def collect(image: InputImage, caption: str | None, error: str | None) -> None:
            results[image.key] = (caption or "", error or "")

        generate_captions(self.captioner, images, batch_size=self.batch_size, max_new_tokens=self.max_new_tokens,
                          decode_workers=self.decode_workers, max_pixels=self.max_pixels, on_caption=collect)  # fmt: skip
        keys = [image.key for image in images]
        return {
            "input": np.array(keys, dtype=object),
            "caption": np.array([results[k][0] for k in keys], dtype=object),
            "error": np.array([results[k][1] for k in keys], dtype=object),
        }


def caption_on_ray(
    todo: Sequence[InputImage],
    captioner: Any,
    options,
    resources: RayResources,
    on_caption: Callable[[InputImage, str | None, str | None], None],
) -> None:
    """Caption `todo` on Ray workers; `on_caption(photo, caption, error)` here, as results arrive."""
    by_key = {image.key: image for image in todo}
    from ..jobs.rows import photo_row

    rows = [photo_row(image) for image in todo]
    source = captioner
    if isinstance(captioner, str) and not storage.is_url(captioner):
        from pathlib import Path

        folder = Path(captioner).expanduser()
        source = str(folder.resolve()) if folder.is_dir() else captioner  # workers may start elsewhere
    with ray_session(resources.address):
        results = run_rows(
            rows,
            PhotoCaptioner,
            constructor_kwargs={"captioner": source, "device": options.device, "precision": options.precision,
                                "batch_size": options.batch_size, "max_new_tokens": options.max_new_tokens,
                                "decode_workers": options.decode_workers, "max_pixels": options.max_pixels},  # fmt: skip
            resources=resources,
            batch_size=max(options.batch_size, 4),
        )
        for row in results:
            on_caption(by_key[str(row["input"])], str(row["caption"]) or None, str(row["error"]) or None)


def caption_ray(
    inputs: Sequence[Any],
    options=None,
    *,
    captioner: Any = DEFAULT_CAPTIONER,
    workers: int | str | tuple[int, int] | Workers = 1,
    gpus_per_worker: float | None = None,
    address: str | None = None,
):
    """`caption_photos` on a Ray cluster (see the module docstring); returns its summary."""
    from .run import CaptionOptions, caption_photos

    resources = RayResources(workers=workers, gpus_per_worker=gpus_per_worker, address=address)
    return caption_photos(inputs, options or CaptionOptions(), captioner=captioner, ray=resources)
