"""The plan of a conversion: what is to be converted, decided once, on one machine.

    plan = plan_conversion(["s3://lab/run42/frames"], "s3://lab/run42/depth", options, model="tr2m-official")
    plan.rows        # one plain dict per photo to convert: for Ray Data, Daft, Spark, a loop
    plan.done        # photos whose outputs are current: skipped
    plan.failures    # failure records decided here (no caption)

Any engine runs the rows through a `PhotoConverter` (convert.worker) and the outcome is the one
`tr2m convert` gives on one machine. The plan does what needs one view of everything: discovery
(sorted, the same on every machine, with what is skipped and why), captions (a caption file's
keys are checked against every photo), the shard, each photo's settings and fingerprint
(jobs.fingerprint: model and head sha256, caption, size, precision, domain, output options, the
input file) and what is already done — decided from **one listing of the output prefix** plus the
manifest (with the parts a killed driver left folded in first), never by asking the store about
each photo. A photo is done when its last record is `ok`, has the fingerprint this run would
write, and every output it needs is in that listing.

Rows hold only strings (JSON- and Arrow-friendly): the photo's key, location and output stem, its
caption with source and origin, its fingerprint and settings (JSON), and why it is redone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Sequence

from ..errors import InputError
from ..io import storage
from ..io.captions import Caption, CaptionFallback, CaptionResolver
from ..io.inputs import InputImage, select_shard
from ..io.manifest_parts import iter_manifest, merge_manifest
from ..io.storage import Location
from ..jobs import changed_settings, discover_photos, fingerprint, is_current
from .layout import OutputLayout
from .options import ConvertOptions
from .pipeline import IdentifiedModel, identify_model, manifest_names, photo_settings


@dataclass
class ConvertPlan:
    out: Location
    layout: OutputLayout
    root: Location  # the folder (or prefix) the photos' keys are relative to
    model: IdentifiedModel
    photos: int  # in this run (this shard)
    rows: list[dict[str, str]] = field(default_factory=list)
    done: list[InputImage] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    redone: dict[str, list[str]] = field(default_factory=dict)  # photo → the settings that changed
    warnings: list[str] = field(default_factory=list)
    inputs_skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    manifest_name: str = "manifest.jsonl"
    summary_name: str = "summary.json"

    @property
    def manifest(self) -> Location:
        return storage.join(self.out, self.manifest_name)

    @property
    def summary_file(self) -> Location:
        return storage.join(self.out, self.summary_name)


def photo_row(image: InputImage, caption: Caption, made_by: dict[str, Any], redone_because: list[str] | None) -> dict[str, str]:
    return {
        "input": image.key,
        "path": str(image.path),
        "output_stem": image.output_stem.as_posix(),
        "caption": caption.text,
        "caption_source": caption.source,
        "caption_origin": caption.origin,
        "fingerprint": made_by["fingerprint"],
        "settings": json.dumps(made_by["settings"], sort_keys=True),
        "redone_because": json.dumps(redone_because) if redone_because else "",
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


def row_settings(row: dict[str, Any]) -> dict[str, Any]:
    """What the row's record and TIFF tags say made it: {"fingerprint", "settings"}."""
    return {"fingerprint": str(row["fingerprint"]), "settings": json.loads(str(row["settings"]))}


def _no_caption_message(image: InputImage) -> str:
    return (
        f"no caption for {image.key}: add it to the caption file, put "
        f"{image.output_stem.name}.txt beside it, or pass --caption / --domain"
    )


def plan_conversion(
    inputs: Sequence[str | Any],
    out: str | Any,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    caption_fallback: CaptionFallback | None = None,
    precision: str | None = None,
) -> ConvertPlan:
    """Decide what to convert (see the module docstring). `model`: a registry name, a folder or
    a loaded TR2M (identified, not loaded: its name and head sha256 enter the fingerprints).
    `precision`: what the workers will run in (fp32, fp16, bf16) when this machine cannot tell
    (a Ray driver without the workers' GPUs); None: as this machine resolves `options`.
    Raises InputError / OutputError before anything is written for unusable inputs, caption
    files or output locations, WeightsError for a model that cannot be found."""
    out = storage.location(out)
    layout = OutputLayout(out, options.outputs)
    inputs = [inputs] if isinstance(inputs, (str, storage.Url)) or hasattr(inputs, "__fspath__") else list(inputs)
    found = discover_photos(inputs, recursive=options.recursive, own_output=out, exclude=layout.is_output)
    everything = found.images
    resolver = CaptionResolver(options.captions, everything, caption_fallback)
    images = select_shard(everything, options.shard)
    if precision is None:
        identified = identify_model(model, options)
    else:  # the device is the workers', not this machine's
        identified = replace(identify_model(model, replace(options, device="cpu")), precision=precision)
    manifest_name, summary_name = manifest_names(options)
    plan = ConvertPlan(out=out, layout=layout, root=everything[0].root, model=identified, photos=len(images),
                       manifest_name=manifest_name, summary_name=summary_name,
                       inputs_skipped=[(str(s.path), s.reason) for s in found.skipped])  # fmt: skip

    # A killed driver's parts first, so every finished photo's record is in the manifest.
    merge_manifest(out, manifest_name)
    previous: dict[str, dict[str, Any]] = {}  # only what deciding needs, not whole records
    if not options.overwrite:
        for record in iter_manifest(plan.manifest):
            previous[record["input"]] = {k: record.get(k) for k in ("status", "fingerprint", "settings")}
    present = {info.key for info in storage.list_files(out)} if previous else set()
    captions = resolver.resolve_all(images)
    todo = []
    for image, caption in zip(images, captions):
        settings = photo_settings(identified, options, image, caption)
        made_by = {"fingerprint": fingerprint(settings), "settings": settings}
        record = previous.get(image.key)
        complete = record is not None and all(key in present for key in layout.keys(image).values())
        if is_current(record, made_by["fingerprint"], complete):
            plan.done.append(image)
            continue
        if record is not None and record.get("status") == "ok" and complete:
            plan.redone[image.key] = changed_settings(record.get("settings"), settings)
        todo.append((image, caption, made_by))
    if todo and all(caption is None for _, caption, _ in todo):
        raise InputError(
            f"no caption for any of the {len(todo)} photos: give --caption-file, put <stem>.txt "
            f"beside each photo, --caption-root DIR, --caption TEXT or --domain indoor|outdoor|surgical"
        )
    from .writing import failure_record

    for image, caption, made_by in todo:
        if caption is None:
            plan.failures.append(failure_record(image, _no_caption_message(image)))
        else:
            plan.rows.append(photo_row(image, caption, made_by, plan.redone.get(image.key)))
    if found.skipped:
        plan.warnings.append(f"skipped {found.describe_skipped()}")
    plan.warnings += [f"caption not read: {problem}" for problem in resolver.problems]
    if resolver.table and resolver.unmatched_file_keys == len(resolver.table):
        sample = next(iter(resolver.table))
        plan.warnings.append(
            f"no key of {options.captions.caption_file} names any photo here (keys look like "
            f"{sample!r}, photos like {everything[0].key!r})"
        )
    return plan
