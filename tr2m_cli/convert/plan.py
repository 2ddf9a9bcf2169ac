"""The plan of a conversion: what is to be converted, decided once, on one machine.

    plan = plan_conversion(["s3://lab/run42/frames"], "s3://lab/run42/depth", options)
    plan.rows        # one plain dict per photo to convert: for Ray Data, Daft, Spark, a loop
    plan.done        # photos whose outputs and record are current: skipped
    plan.failures    # failure records decided here (no caption)

Any engine runs the rows through a `PhotoConverter` (convert.worker) and the outcome is the same.
The plan does what needs one view of everything: discovery (sorted, the same on every machine),
captions (a caption file's keys are checked against every photo), the shard, and what is already
done — decided from **one listing of the output prefix** plus the manifest (and the parts of a run
whose driver was killed), never by asking the store about each photo. A photo is done when every
output it needs is in that listing and the manifest holds an "ok" record for it.

Rows hold only strings (JSON-friendly, Arrow-friendly): the photo's key, its location, its output
stem and its caption with source and origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterator, Sequence

from ..errors import InputError
from ..io import storage
from ..io.captions import Caption, CaptionFallback, CaptionResolver
from ..io.images import IMAGE_SUFFIXES
from ..io.inputs import InputImage, collect_images, select_shard
from ..io.manifest_parts import iter_manifest, merge_manifest
from ..io.storage import Location
from .layout import OutputLayout
from .options import ConvertOptions


def manifest_names(options: ConvertOptions) -> tuple[str, str]:
    """manifest.jsonl and summary.json; `-K-of-N` for a shard, so shards can share an --out."""
    if options.shard is None:
        return "manifest.jsonl", "summary.json"
    tag = f"{options.shard.index}-of-{options.shard.count}"
    return f"manifest-{tag}.jsonl", f"summary-{tag}.json"


@dataclass
class ConvertPlan:
    out: Location
    layout: OutputLayout
    root: Location  # the folder (or prefix) the photos' keys are relative to
    photos: int  # in this run (this shard)
    rows: list[dict[str, str]] = field(default_factory=list)
    done: list[InputImage] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    unmatched_caption_keys: str | None = None  # a warning when no caption-file key names a photo
    manifest_name: str = "manifest.jsonl"
    summary_name: str = "summary.json"

    @property
    def manifest(self) -> Location:
        return storage.join(self.out, self.manifest_name)

    @property
    def summary_file(self) -> Location:
        return storage.join(self.out, self.summary_name)


def photo_row(image: InputImage, caption: Caption) -> dict[str, str]:
    return {
        "input": image.key,
        "path": str(image.path),
        "output_stem": image.output_stem.as_posix(),
        "caption": caption.text,
        "caption_source": caption.source,
        "caption_origin": caption.origin,
    }


def row_image(row: dict[str, Any]) -> InputImage:
    """The InputImage a row stands for, on whichever machine reads it (the fields a worker uses:
    the photo's location, key and output stem)."""
    path = storage.location(str(row["path"]))
    return InputImage(
        path=path,
        root=path.parent,
        relative=PurePosixPath(str(row["input"])),
        input_root=path.parent,
        output_stem=PurePosixPath(str(row["output_stem"])),
    )


def row_caption(row: dict[str, Any]) -> Caption:
    return Caption(str(row["caption"]), str(row["caption_source"]), str(row["caption_origin"]))


def _no_caption_message(image: InputImage) -> str:
    return (
        f"no caption for {image.key}: add it to the caption file, put "
        f"{image.output_stem.name}.txt beside it, or pass --caption / --domain"
    )


def _ok_records(manifest: Location) -> Iterator[str]:
    """Keys of the photos the manifest records as converted, in order."""
    for record in iter_manifest(manifest):
        if record.get("status") == "ok":
            yield record["input"]


def plan_conversion(
    inputs: Sequence[str | Any],
    out: str | Any,
    options: ConvertOptions = ConvertOptions(),
    *,
    caption_fallback: CaptionFallback | None = None,
) -> ConvertPlan:
    """Decide what to convert (see the module docstring). Raises InputError / OutputError
    before anything is written for unusable inputs, caption files or output locations."""
    out = storage.location(out)
    layout = OutputLayout(out, options.outputs)
    inputs = [inputs] if isinstance(inputs, (str, storage.Url)) or hasattr(inputs, "__fspath__") else list(inputs)
    everything = collect_images(inputs, recursive=options.recursive, exclude=layout.is_output)
    if not everything:
        suffixes = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        shown = ", ".join(storage.describe(i) for i in inputs[:3]) + (", …" if len(inputs) > 3 else "")
        raise InputError(f"no photos found in {shown} (looked for {suffixes})")
    resolver = CaptionResolver(options.captions, everything, caption_fallback)
    images = select_shard(everything, options.shard)
    manifest_name, summary_name = manifest_names(options)
    plan = ConvertPlan(out=out, layout=layout, root=everything[0].root, photos=len(images),
                       manifest_name=manifest_name, summary_name=summary_name)  # fmt: skip

    if options.overwrite:
        todo = images
    else:
        # A killed driver's parts first, so the records of every finished photo are in the manifest.
        merge_manifest(out, manifest_name)
        present = {info.key for info in storage.list_files(out)}
        recorded = set(_ok_records(plan.manifest))
        todo = []
        for image in images:
            complete = all(key in present for key in layout.keys(image).values())
            (plan.done if complete and image.key in recorded else todo).append(image)
    captions = resolver.resolve_all(todo)
    if todo and all(caption is None for caption in captions):
        raise InputError(
            f"no caption for any of the {len(todo)} photos: give --caption-file, put <stem>.txt "
            f"beside each photo, --caption-root DIR, --caption TEXT or --domain indoor|outdoor|surgical"
        )
    from .writing import failure_record

    for image, caption in zip(todo, captions):
        if caption is None:
            plan.failures.append(failure_record(image, _no_caption_message(image)))
        else:
            plan.rows.append(photo_row(image, caption))
    if resolver.table and resolver.unmatched_file_keys == len(resolver.table):
        sample = next(iter(resolver.table))
        plan.unmatched_caption_keys = (
            f"no key of {options.captions.caption_file} names any photo here (keys look like "
            f"{sample!r}, photos like {everything[0].key!r})"
        )
    return plan
