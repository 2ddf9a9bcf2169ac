"""`caption`: folders of photos in, captions out, where `tr2m convert` reads them.

    from tr2m_cli.caption.run import CaptionOptions, caption_photos
    summary = caption_photos(["photos"], CaptionOptions(), captioner="blip-base")
    print(summary.line())

Photos are found exactly as `convert` finds them (same walker, order and `--shard`). Captions go
to `<stem>.txt` beside each photo (default), to a mirrored `--caption-root` tree, or to one
captions file (`.json` mapping or `.jsonl` lines, what `convert --caption-file` reads). A photo
that already has a caption `convert` would find there is skipped, so a rerun resumes; `overwrite`
regenerates. Writes are atomic; an unreadable photo is reported and the run goes on.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Sequence

from ..errors import InputError, OutputError, Tr2mError
from ..io import storage
from ..io.atomic import write_text
from ..io.captions import CaptionFallback, CaptionResolver, CaptionRules, caption_root_path, sidecar_path
from ..io.images import IMAGE_SUFFIXES, image_errors, pil_to_rgb
from ..io.inputs import InputImage, Shard, collect_images, select_shard
from .length import ClipTokenCounter, TokenCount
from .registry import DEFAULT_CAPTIONER

CAPTION_FILE_SUFFIXES = (".json", ".jsonl")
# Captioners read at most ~1.3k pixels a side (LLaVA-NeXT tiles); larger JPEGs are decoded at
# 1/2, 1/4 or 1/8 scale by libjpeg, never below this.
DECODE_SIDE = 1344
FILE_FLUSH_SECONDS = 10.0


@dataclass(frozen=True)
class CaptionOptions:
    """How `caption_photos` runs. `out`: one captions file (.json or .jsonl); `caption_root`: a
    tree mirroring the inputs; neither: `<stem>.txt` beside each photo."""

    out: Path | str | None = None  # a local path or a storage URL (io.storage)
    caption_root: Path | str | None = None
    recursive: bool = True
    shard: Shard | None = None
    overwrite: bool = False
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 4
    max_new_tokens: int | None = None
    decode_workers: int = 2
    progress: bool = True

    def __post_init__(self) -> None:
        if self.out is not None and self.caption_root is not None:
            raise InputError("give either --out FILE or --caption-root DIR, not both")
        if self.out is not None and PurePosixPath(str(self.out)).suffix.lower() not in CAPTION_FILE_SUFFIXES:
            raise InputError(f"--out {self.out}: a captions file ends in .json (a mapping) or .jsonl (one per line)")
        if self.batch_size < 1 or self.decode_workers < 1:
            raise InputError("batch size and decode workers: at least 1 each")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InputError(f"--max-new-tokens {self.max_new_tokens}: must be at least 1")


# -- where captions go ------------------------------------------------------------------------


class TextFileSink:
    """One text file per photo: a sidecar, or the photo's file in a caption tree."""

    def __init__(self, caption_root: Path | None = None) -> None:
        self.caption_root = caption_root

    def path(self, image: InputImage) -> Path:
        return sidecar_path(image) if self.caption_root is None else caption_root_path(image, self.caption_root)

    def write(self, image: InputImage, caption: str) -> str:
        path = self.path(image)
        write_text(path, caption + "\n")
        return str(path)

    def flush(self) -> None:
        pass

    def describe(self) -> str:
        return "<stem>.txt beside each photo" if self.caption_root is None else f"{self.caption_root} (mirrored tree)"


class CaptionFileSink:
    """One captions file keyed by the photo's path relative to the input folder; entries already
    in it (other photos, earlier runs) are kept. Rewritten atomically every few seconds and at the
    end, so an interrupted run loses at most the last few captions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, str] = _read_own_file(path)
        self.dirty = False
        self.last_flush = time.monotonic()

    def write(self, image: InputImage, caption: str) -> str:
        self.entries[image.key] = caption
        self.dirty = True
        if time.monotonic() - self.last_flush > FILE_FLUSH_SECONDS:
            self.flush()
        return f"{self.path} [{image.key!r}]"

    def flush(self) -> None:
        if not self.dirty:
            return
        if self.path.suffix.lower() == ".jsonl":
            text = "".join(json.dumps({"image": k, "caption": v}, ensure_ascii=False) + "\n" for k, v in self.entries.items())
        else:
            text = json.dumps(self.entries, indent=2, ensure_ascii=False) + "\n"
        try:
            storage.write_text(self.path, text)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write the captions file ({exc.strerror or exc})") from None
        except OutputError as exc:
            raise OutputError(f"cannot write the captions file: {exc}") from None
        self.dirty = False
        self.last_flush = time.monotonic()

    def describe(self) -> str:
        return str(self.path)


def _read_own_file(path) -> dict[str, str]:
    """An existing captions file, as written (keys unchanged), so entries are kept on rewrite."""
    if not storage.exists(path):
        return {}
    from ..io.captions import load_caption_file

    return dict(load_caption_file(path))


def shard_file(path: storage.Location, shard: Shard | None) -> storage.Location:
    """N machines writing one captions file would overwrite each other: each shard writes
    `name-K-of-N.suffix` (.jsonl shards concatenate into one file with `cat`)."""
    if shard is None:
        return path
    return path.with_name(f"{path.stem}-{shard.index}-of-{shard.count}{path.suffix}")


# -- the run ----------------------------------------------------------------------------------


@dataclass
class CaptionSummary:
    """What a run did. `exit_code`: 0 all captioned or already captioned, 1 some failed."""

    destination: str
    captioner: str = ""
    photos: int = 0
    captioned: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (photo, error)
    long_captions: list[tuple[str, TokenCount]] = field(default_factory=list)
    elapsed_s: float = 0.0
    setup_s: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    @property
    def captions_per_second(self) -> float:
        working = self.elapsed_s - self.setup_s
        return self.captioned / working if working > 0 else 0.0

    def line(self) -> str:
        parts = [f"{self.captioned} captioned"]
        if self.skipped:
            parts.append(f"{self.skipped} already had one")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.long_captions:
            parts.append(f"{len(self.long_captions)} longer than CLIP reads")
        rate = f", {self.captions_per_second:.2f} captions/s" if self.captioned else ""
        state = "interrupted: " if self.interrupted else ""
        return f"{state}{', '.join(parts)} of {self.photos} photos in {self.elapsed_s:.1f} s{rate} → {self.destination}"


def read_for_captioning(path: storage.Location):
    """An upright RGB PIL image, JPEGs decoded at reduced scale when far larger than captioners
    read; InputError naming the file when unreadable."""
    from PIL import Image

    with image_errors(path), storage.open_for_reading(path) as handle, Image.open(handle) as pil:
        if pil.format == "JPEG" and max(pil.size) >= 2 * DECODE_SIDE:
            pil.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
        pil.load()
        rgb = pil_to_rgb(pil)
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{path}: empty image")
    return Image.fromarray(rgb)


def _decoded(images: Sequence[InputImage], workers: int, prefetch: int) -> Iterator[tuple[InputImage, Any]]:
    """(photo, PIL image or InputError) in order, decoded ahead by a few threads."""
    pool = futures.ThreadPoolExecutor(workers, thread_name_prefix="tr2m-caption-decode")
    pending: collections.deque = collections.deque()
    queue = iter(images)

    def read(image: InputImage):
        try:
            return read_for_captioning(image.path)
        except Tr2mError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - an odd file must not end the run
            return InputError(f"{image.path}: cannot decode ({type(exc).__name__}: {exc})")

    try:
        while True:
            while len(pending) < prefetch:
                image = next(queue, None)
                if image is None:
                    break
                pending.append((image, pool.submit(read, image)))
            if not pending:
                return
            image, future = pending.popleft()
            yield image, future.result()
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def generate_captions(
    captioner,
    images: Sequence[InputImage],
    *,
    batch_size: int,
    max_new_tokens: int | None = None,
    decode_workers: int = 2,
    on_caption: Callable[[InputImage, str | None, str | None], None],
) -> None:
    """Caption photos in batches; `on_caption(photo, caption, error)` is called once per photo,
    in order, with a caption or an error message (unreadable photo, empty caption, model error).
    A batch that fails is retried photo by photo, so one odd photo fails alone."""
    batch: list[tuple[InputImage, Any]] = []

    def run(items: list[tuple[InputImage, Any]]) -> None:
        try:
            captions = captioner.caption_batch([picture for _, picture in items], max_new_tokens)
        except Exception as exc:  # noqa: BLE001 - the model's failure on a photo must not end the run
            if len(items) > 1:
                for item in items:
                    run([item])
                return
            image = items[0][0]
            on_caption(image, None, f"{image.key}: captioning failed ({type(exc).__name__}: {exc})")
            return
        for (image, _), caption in zip(items, captions):
            if caption:
                on_caption(image, caption, None)
            else:
                on_caption(image, None, f"{image.key}: the captioner wrote no text")

    for image, picture in _decoded(images, decode_workers, prefetch=2 * batch_size + decode_workers):
        if isinstance(picture, Tr2mError):
            on_caption(image, None, str(picture))
            continue
        batch.append((image, picture))
        if len(batch) == batch_size:
            run(batch)
            batch = []
    if batch:
        run(batch)


def _writable_folder(folder: Path) -> bool:
    """A folder that exists and can be written, or could be created."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _check_destination(sink, todo: list[InputImage]) -> list[InputImage]:
    """Refuse a destination that cannot be written before any captioning; returns the photos
    whose sidecar folder cannot be written (they fail alone, with a hint)."""
    if isinstance(sink, CaptionFileSink) and isinstance(sink.path, storage.Url):
        storage.check_writable(sink.path.parent, "--out")
        return []
    if isinstance(sink, TextFileSink) and isinstance(sink.caption_root, storage.Url):
        storage.check_writable(sink.caption_root, "--caption-root")
        return []
    if isinstance(sink, TextFileSink) and sink.caption_root is None and todo and isinstance(todo[0].path, storage.Url):
        storage.check_writable(todo[0].root, "sidecars beside the photos")
        return []
    if isinstance(sink, CaptionFileSink):
        if sink.path.is_dir():
            raise OutputError(f"{sink.path}: is a folder; --out takes a captions file (.json or .jsonl)")
        if not _writable_folder(sink.path.parent):
            raise OutputError(f"{sink.path}: cannot be written (permission denied on its folder)")
        return []
    if sink.caption_root is not None:
        if sink.caption_root.exists() and not sink.caption_root.is_dir():
            raise OutputError(f"{sink.caption_root}: exists and is not a folder (--caption-root)")
        if not _writable_folder(sink.caption_root):
            raise OutputError(f"{sink.caption_root}: cannot be written (permission denied) (--caption-root)")
        return []
    folders = {sink.path(image).parent for image in todo}
    blocked = {folder for folder in folders if not _writable_folder(folder)}
    if blocked and blocked == folders:
        raise OutputError(
            f"{sorted(blocked)[0]}: cannot write captions beside the photos (permission denied): "
            f"use --out FILE or --caption-root DIR"
        )
    return [image for image in todo if sink.path(image).parent in blocked]


def _existing_captions(images: list[InputImage], everything: list[InputImage], options: CaptionOptions, out: Path | None) -> list[bool]:
    """Which photos `convert` would already find a caption for, given where this run writes."""
    caption_root = options.caption_root
    rules = CaptionRules(
        caption_file=out if out is not None and storage.exists(out) else None,
        caption_root=caption_root if caption_root is not None and storage.is_dir(caption_root) else None,
        sidecars=True,
    )
    return [caption is not None for caption in CaptionResolver(rules, everything).resolve_all(images)]


def caption_photos(
    inputs: Sequence[str | Path],
    options: CaptionOptions = CaptionOptions(),
    *,
    captioner: Any = DEFAULT_CAPTIONER,
    token_counter: Callable[[Sequence[str]], list[int]] | None = None,
    report: Callable[[str], None] | None = None,
    ray: Any = None,
) -> CaptionSummary:
    """Caption the photos of `inputs` (files, folders, @list.txt, storage URLs) that have none.

    `captioner`: a registry name, Hugging Face id, folder or a loaded `Captioner`.
    `ray`: a `tr2m_cli.cluster.RayResources` to caption on a Ray cluster (each worker loads the
    captioner once; this process decides what to do and writes the captions), else None.
    `report(line)` receives warnings and per-photo errors as they happen (default: stderr,
    above the progress bar).
    Raises a Tr2mError, before anything is written, for missing inputs, a malformed existing
    captions file, an unwritable destination or a captioner that cannot be loaded.
    """
    from tqdm import tqdm

    from .captioner import Captioner, load_captioner

    started = time.perf_counter()
    report = report or _to_stderr
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out = shard_file(storage.location(options.out), options.shard) if options.out else None
    caption_root = storage.location(options.caption_root) if options.caption_root else None
    options = replace(options, out=out, caption_root=caption_root)
    everything = collect_images(inputs, recursive=options.recursive)
    if not everything:
        suffixes = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        raise InputError(f"no photos found in {', '.join(str(i) for i in inputs[:3])} (looked for {suffixes})")
    images = select_shard(everything, options.shard)
    sink = CaptionFileSink(out) if out is not None else TextFileSink(caption_root)
    has_caption = [False] * len(images) if options.overwrite else _existing_captions(images, everything, options, out)
    todo = [image for image, present in zip(images, has_caption) if not present]
    blocked = set(_check_destination(sink, todo))
    summary = CaptionSummary(destination=sink.describe(), photos=len(images), skipped=len(images) - len(todo))

    def fail(image: InputImage, error: str) -> None:
        summary.failed += 1
        summary.failures.append((image.key, error))
        report(f"tr2m: failed: {error}")

    for image in (i for i in todo if i in blocked):
        fail(image, f"{sink.path(image)}: cannot be written (permission denied): use --out FILE or --caption-root DIR")
    todo = [image for image in todo if image not in blocked]
    if todo and ray is not None:
        from .resolve import resolve_captioner

        if isinstance(captioner, Captioner):
            raise InputError("on Ray each worker loads its own captioner: give its name or folder, not a loaded one")
        summary.captioner = resolve_captioner(captioner).name
    elif todo:
        if not isinstance(captioner, Captioner):
            captioner = load_captioner(captioner, device=options.device, precision=options.precision)
        summary.captioner = captioner.name
    counter = ClipTokenCounter(token_counter) if token_counter else ClipTokenCounter.from_cache()
    summary.setup_s = round(time.perf_counter() - started, 3)

    bar = tqdm(
        total=len(images),
        initial=summary.photos - len(todo),
        unit="caption",
        desc="caption",
        disable=not options.progress or not todo,
        dynamic_ncols=True,
        file=sys.stderr,
    )

    def on_caption(image: InputImage, caption: str | None, error: str | None) -> None:
        if caption is None:
            fail(image, error or f"{image.key}: no caption")
        else:
            try:
                sink.write(image, caption)
            except OSError as exc:
                fail(image, f"{image.key}: cannot write its caption ({exc.strerror or exc})")
            else:
                summary.captioned += 1
                (count,) = counter([caption])
                if count.truncated:
                    summary.long_captions.append((image.key, count))
                    report(f"tr2m: warning: {image.key}: caption is {count.describe()}")
        bar.update(1)

    try:
        if todo and ray is not None:
            from .ray_engine import caption_on_ray

            caption_on_ray(todo, captioner, options, ray, on_caption)
        elif todo:
            generate_captions(
                captioner,
                todo,
                batch_size=options.batch_size,
                max_new_tokens=options.max_new_tokens,
                decode_workers=options.decode_workers,
                on_caption=on_caption,
            )
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        bar.close()
        sink.flush()
        summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


def auto_caption_fallback(
    captioner: Any = DEFAULT_CAPTIONER,
    *,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 4,
    max_new_tokens: int | None = None,
    save_sidecars: bool = False,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> CaptionFallback:
    """Captions generated on the fly for `convert` (`--auto-caption`), recorded as "generated"
    by the captioner's name. The captioner is resolved now (a bad name fails before any work),
    loaded only when some photo has no caption, and released once they are made, before the
    depth model needs the memory. With `save_sidecars`, each is also kept as `<stem>.txt`."""
    from .captioner import Captioner, load_captioner
    from .resolve import resolve_captioner

    spec = captioner.spec if isinstance(captioner, Captioner) else resolve_captioner(captioner)
    report = report or _to_stderr
    sidecars = TextFileSink()

    def generate(images: Sequence[InputImage]) -> list[str | None]:
        from tqdm import tqdm

        loaded = captioner if isinstance(captioner, Captioner) else load_captioner(spec, device=device, precision=precision)
        captions: dict[Path, str | None] = {}
        with tqdm(total=len(images), unit="caption", desc="auto-caption", disable=not progress, dynamic_ncols=True, file=sys.stderr) as bar:

            def on_caption(image: InputImage, caption: str | None, error: str | None) -> None:
                captions[image.path] = caption
                if error:
                    report(f"tr2m: warning: no caption generated: {error}")
                elif save_sidecars:
                    try:
                        sidecars.write(image, caption)
                    except OSError as exc:
                        report(f"tr2m: warning: {sidecars.path(image)}: caption not saved ({exc.strerror or exc})")
                bar.update(1)

            generate_captions(loaded, images, batch_size=batch_size, max_new_tokens=max_new_tokens, on_caption=on_caption)
        del loaded
        _release_memory()
        return [captions.get(image.path) for image in images]

    return CaptionFallback(name=spec.name, generate=generate)


def _to_stderr(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
