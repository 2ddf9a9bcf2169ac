"""`caption`: folders of photos in, captions out, where `tr2m convert` reads them.

    from tr2m_cli.caption.run import CaptionOptions, caption_photos
    summary = caption_photos(["photos"], CaptionOptions(), captioner="blip-base")
    print(summary.line())

Photos are found exactly as `convert` finds them (the job layer: same walker, order, `--shard`,
same photos skipped and reported). Captions go to `<stem>.txt` beside each photo (default), to a
mirrored `--caption-root` tree, or to one captions file (`.json` mapping or `.jsonl` lines, what
`convert --caption-file` reads). A photo that already has a caption `convert` would find there is
skipped, so a rerun resumes; `overwrite` regenerates. A captions file always ends up holding
every photo's caption: ones found beside the photos are copied in. Writes are atomic; an
unreadable photo is reported and the run goes on; Ctrl-C and SIGTERM save what was captioned.
Several runs may write one captions file at once: each merges its captions into what the file
holds (under a lock), so none is lost. The run ends with a summary, also written as JSON.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

from ..errors import InputError, OutputError, Tr2mError
from ..io import storage
from ..io.atomic import json_text, write_text
from ..io.captions import CaptionFallback, CaptionResolver, CaptionRules, caption_root_path, sidecar_path
from ..io.images import DEFAULT_MAX_PIXELS, open_image, pil_to_rgb
from ..io.inputs import InputImage, Shard, select_shard
from ..io.locks import FileLock
from ..io.manifest import describe_os_error
from ..jobs import JobInterrupted, JobSummary, Progress, StopSignals, decode_ahead, discover_photos, jsonable
from .length import ClipTokenCounter, TokenCount
from .registry import DEFAULT_CAPTIONER

CAPTION_FILE_SUFFIXES = (".json", ".jsonl")
# Captioners read at most ~1.3k pixels a side (LLaVA-NeXT tiles); larger JPEGs are decoded at
# 1/2, 1/4 or 1/8 scale by libjpeg, never below this.
DECODE_SIDE = 1344
# A captions file is rewritten (merged under its lock) at most this often, and at the end: an
# interrupted run loses nothing (the end comes on Ctrl-C and SIGTERM too), a killed one at most
# this many seconds of captions.
FILE_FLUSH_SECONDS = 2.0


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
    decode_workers: int = 2  # 0: decode in the main thread
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    progress: bool = True

    def __post_init__(self) -> None:
        if self.out is not None and self.caption_root is not None:
            raise InputError("give either --out FILE or --caption-root DIR, not both")
        if self.out is not None and PurePosixPath(str(self.out)).suffix.lower() not in CAPTION_FILE_SUFFIXES:
            raise InputError(f"--out {self.out}: a captions file ends in .json (a mapping) or .jsonl (one per line)")
        if self.batch_size < 1 or self.decode_workers < 0:
            raise InputError("batch size at least 1, decode workers 0 or more")
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

    def flush(self, *, final: bool = False) -> None:
        pass

    def describe(self) -> str:
        return "<stem>.txt beside each photo" if self.caption_root is None else f"{self.caption_root} (mirrored tree)"


class CaptionFileSink:
    """One captions file keyed by the photo's path relative to the input folder. Each flush
    takes the file's lock, reads what it holds now (other photos, earlier runs, runs writing it
    at this moment), adds this run's captions and rewrites it atomically."""

    def __init__(self, path) -> None:
        self.path = path
        # Object stores have no locks: runs sharing one captions file there each keep their own
        # shard file (--shard K/N) instead.
        self.lock = contextlib.nullcontext() if storage.is_url(path) else FileLock(path.with_name(f".{path.name}.lock"))
        self.entries: dict[str, str] = _read_own_file(path)
        self.mine: dict[str, str] = {}
        self.dirty = False
        self.last_flush = time.monotonic()

    def write(self, image: InputImage, caption: str) -> str:
        self.mine[image.key] = caption
        self.dirty = True
        if time.monotonic() - self.last_flush > FILE_FLUSH_SECONDS:
            self.flush()
        return f"{self.path} [{image.key!r}]"

    def flush(self, *, final: bool = False) -> None:
        """Merge this run's captions into the file. OutputError in plain words on failure."""
        if not self.dirty:
            return
        try:
            with self.lock:
                self.entries = {**_read_own_file(self.path), **self.mine}
                write_text(self.path, _captions_text(self.path, self.entries))
        except OSError as exc:
            raise OutputError(f"cannot write the captions file {self.path}: {describe_os_error(exc)}") from None
        self.dirty = False
        self.last_flush = time.monotonic()

    def describe(self) -> str:
        return str(self.path)


def _captions_text(path: Path, entries: dict[str, str]) -> str:
    if path.suffix.lower() == ".jsonl":
        return "".join(json_text({"image": k, "caption": v}, indent=None) + "\n" for k, v in entries.items())
    return json_text(entries) + "\n"


def _read_own_file(path) -> dict[str, str]:
    """An existing captions file, as written (keys unchanged), so entries are kept on rewrite."""
    if not storage.exists(path):
        return {}
    from ..io.captions import load_caption_file

    return dict(load_caption_file(path))


def shard_file(path: Path, shard: Shard | None) -> Path:
    """N machines writing one captions file would overwrite each other: each shard writes
    `name-K-of-N.suffix` (.jsonl shards concatenate into one file with `cat`)."""
    if shard is None:
        return path
    return path.with_name(f"{path.stem}-{shard.index}-of-{shard.count}{path.suffix}")


def summary_path(options: CaptionOptions, everything: Sequence[InputImage]) -> Path:
    """Where the run's summary goes: beside the captions file (`captions.summary.json`), in the
    caption tree (`summary.json`), or, for sidecars, in the photos' folder
    (`tr2m-caption-summary.json`); per shard with `-K-of-N`."""
    tag = f"-{options.shard.index}-of-{options.shard.count}" if options.shard else ""
    if options.out is not None:
        return options.out.with_name(f"{options.out.stem}.summary.json")  # the shard is in the stem
    if options.caption_root is not None:
        return options.caption_root / f"summary{tag}.json"
    return everything[0].root / f"tr2m-caption-summary{tag}.json"


# -- the run ----------------------------------------------------------------------------------


@dataclass
class CaptionSummary(JobSummary):
    """What a run did. `exit_code`: 0 all captioned or already captioned, 1 some failed."""

    command: str = "caption"
    verb: str = "captioned"
    skipped_words: str = "already had one"
    rate_unit: str = "captions"
    captioner: str = ""
    copied: int = 0  # captions found beside the photos and copied into the captions file
    long_captions: list[tuple[str, TokenCount]] = field(default_factory=list)

    @property
    def captioned(self) -> int:
        return self.done

    @captioned.setter
    def captioned(self, value: int) -> None:
        self.done = value

    @property
    def captions_per_second(self) -> float:
        return self.per_second

    def extra_counts(self) -> list[str]:
        extra = []
        if self.copied:
            extra.append(f"{self.copied} copied into the file")
        if self.long_captions:
            extra.append(f"{len(self.long_captions)} longer than CLIP reads")
        return extra

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "captioner": self.captioner,
            "copied": self.copied,
            "long_captions": [{"input": key, "tokens": count.tokens} for key, count in self.long_captions],
        }


def read_for_captioning(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """An upright RGB PIL image, JPEGs decoded at reduced scale when far larger than captioners
    read; InputError naming the file when unreadable, not a regular file or over `max_pixels`."""
    from PIL import Image

    with open_image(path, max_pixels=max_pixels) as pil:
        if pil.format == "JPEG" and max(pil.size) >= 2 * DECODE_SIDE:
            pil.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
        pil.load()
        rgb = pil_to_rgb(pil)
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{path}: empty image")
    return Image.fromarray(rgb)


def generate_captions(
    captioner,
    images: Sequence[InputImage],
    *,
    batch_size: int,
    max_new_tokens: int | None = None,
    decode_workers: int = 2,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
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

    def read(image: InputImage):
        picture = getattr(image, "picture", None)  # a clip's frame, already decoded
        return picture() if callable(picture) else read_for_captioning(image.path, max_pixels)

    prefetch = 2 * batch_size + decode_workers
    for image, picture in decode_ahead(images, read, workers=decode_workers, prefetch=prefetch, name="tr2m-caption-decode"):
        if isinstance(picture, Exception):
            message = str(picture) if isinstance(picture, Tr2mError) else f"{image.path}: cannot decode ({type(picture).__name__}: {picture})"
            on_caption(image, None, message)
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


def _existing_captions(images, everything, options: CaptionOptions, out: Path | None):
    """The caption `convert` would already find for each photo (or None), given where this run
    writes; and the resolver's problems (caption files that could not be read)."""
    root = options.caption_root
    rules = CaptionRules(
        caption_file=out if out is not None and storage.exists(out) else None,
        caption_root=root if root is not None and storage.is_dir(root) else None,
        sidecars=True,
    )
    resolver = CaptionResolver(rules, everything)
    return resolver.resolve_all(images), resolver.problems


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
    captions file, an unwritable destination or a captioner that cannot be loaded; and
    JobInterrupted (a KeyboardInterrupt carrying the summary) when stopped by a signal, after
    saving the captions made.
    """
    started = time.perf_counter()
    progress = Progress(0, enabled=options.progress, unit="caption", desc="caption", say=report)
    with StopSignals(progress.say) as signals:
        return _caption(inputs, options, captioner, token_counter, progress, signals, started, ray)


def _caption(inputs, options, captioner, token_counter, progress, signals, started, ray=None) -> CaptionSummary:
    from .captioner import Captioner, load_captioner

    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out = shard_file(storage.location(options.out), options.shard) if options.out else None
    caption_root = storage.location(options.caption_root) if options.caption_root else None
    options = replace(options, out=out, caption_root=caption_root)
    found = discover_photos(inputs, recursive=options.recursive, own_output=caption_root)
    everything = found.images
    images = select_shard(everything, options.shard)
    sink = CaptionFileSink(out) if out is not None else TextFileSink(caption_root)
    existing, problems = ([None] * len(images), []) if options.overwrite else _existing_captions(images, everything, options, out)
    todo = [image for image, caption in zip(images, existing) if caption is None]
    blocked = set(_check_destination(sink, todo))
    summary = CaptionSummary(
        destination=sink.describe(),
        photos=len(images),
        skipped=len(images) - len(todo),
        summary_file=summary_path(options, everything),
        options=jsonable(options),
        inputs=[storage.describe(i) for i in inputs],
        inputs_skipped=[(str(s.path), s.reason) for s in found.skipped],
    )
    if ray is not None:
        summary.options["engine"], summary.options["workers"] = "ray", str(ray.workers)
    if isinstance(sink, CaptionFileSink):
        # The file is to hold every photo's caption: those found beside the photos are copied in,
        # so `convert --caption-file` finds them all.
        for image, caption in zip(images, existing):
            if caption is not None and caption.source != "caption-file":
                sink.mine[image.key] = caption.text
                sink.dirty = True
                summary.copied += 1

    def fail(image: InputImage, error: str) -> None:
        with signals.deferred():
            summary.fail(image.key, error)
            progress.error(error)
            progress.advance()

    if found.skipped:
        progress.warn(f"skipped {found.describe_skipped()}")
    for problem in problems:
        progress.warn(f"caption not read: {problem}")
    for image in (i for i in todo if i in blocked):
        fail(image, f"{sink.path(image)}: cannot be written (permission denied): use --out FILE or --caption-root DIR")
    todo = [image for image in todo if image not in blocked]
    if todo and ray is not None:
        from .resolve import resolve_captioner

        if isinstance(captioner, Captioner):
            raise InputError("on Ray each worker loads its own captioner: give its name or folder, not a loaded one")
        summary.captioner = resolve_captioner(captioner).name
        summary.model = {"name": summary.captioner}
    elif todo:
        if not isinstance(captioner, Captioner):
            captioner = load_captioner(captioner, device=options.device, precision=options.precision)
        summary.captioner = captioner.name
        summary.model = {"name": captioner.name}
    counter = ClipTokenCounter(token_counter) if token_counter else ClipTokenCounter.from_cache()
    summary.setup_s = round(time.perf_counter() - started, 3)
    progress.total, progress.initial = len(images), summary.photos - len(todo)
    if todo:
        progress.start()

    def on_caption(image: InputImage, caption: str | None, error: str | None) -> None:
        if caption is None:
            fail(image, error or f"{image.key}: no caption")
            return
        with signals.deferred():  # a caption made is a caption kept
            try:
                sink.write(image, caption)
            except (OSError, OutputError) as exc:
                reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
                summary.fail(image.key, f"{image.key}: cannot write its caption ({reason})")
                progress.error(summary.failures[-1][1])
            else:
                summary.done += 1
                (count,) = counter([caption])
                if count.truncated:
                    summary.long_captions.append((image.key, count))
                    progress.warn(f"{image.key}: caption is {count.describe()}")
            progress.advance()

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
                max_pixels=options.max_pixels,
                on_caption=on_caption,
            )
    except KeyboardInterrupt as exc:
        number = exc.signal_number if isinstance(exc, JobInterrupted) else signal.SIGINT
        signals.interrupt(number)
        summary.signal = signal.Signals(number).name
    finally:
        with signals.deferred():
            progress.close()
            try:
                sink.flush(final=True)
            except OutputError as exc:
                summary.write_errors.append(str(exc))
            summary.elapsed_s = round(time.perf_counter() - started, 3)
            summary.warnings = list(progress.warnings)
            summary.write()
            for error in summary.write_errors:
                progress.say(f"tr2m: error: {error}")
    if summary.interrupted:
        raise JobInterrupted(signal.Signals[summary.signal].value, summary)
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
        captions: dict[int, str | None] = {}  # by item: a clip's scenes share its path
        with tqdm(total=len(images), unit="caption", desc="auto-caption", disable=not progress, dynamic_ncols=True, file=sys.stderr) as bar:

            def on_caption(image: InputImage, caption: str | None, error: str | None) -> None:
                captions[id(image)] = caption
                if error:
                    report(f"tr2m: warning: no caption generated: {error}")
                elif save_sidecars and getattr(image, "sidecar", True):
                    try:
                        sidecars.write(image, caption)
                    except OSError as exc:
                        report(f"tr2m: warning: {sidecars.path(image)}: caption not saved ({exc.strerror or exc})")
                bar.update(1)

            generate_captions(loaded, images, batch_size=batch_size, max_new_tokens=max_new_tokens, on_caption=on_caption)
        del loaded
        _release_memory()
        return [captions.get(id(image)) for image in images]

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
