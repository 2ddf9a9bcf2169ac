"""The plan of a conversion: what is to be converted and how, decided once, for every engine.

    plan = plan_conversion(["s3://lab/run42/frames"], "s3://lab/run42/depth", options, model="tr2m-official")
    plan.jobs        # one PhotoJob per photo to convert: photo, caption, fingerprint, camera
    plan.rows        # the same as plain string dicts: for Ray Data, Daft, Spark, a loop
    plan.done        # photos whose outputs are current: skipped
    plan.failures    # failure records decided here (no caption)

`tr2m convert` plans here whatever runs the photos — this process on local folders or object
stores, or a Ray cluster — and hands the jobs to PhotoConverters (convert.worker), so every
engine converts the same photos the same way. The plan does what needs one view of everything:

1. Checks that need no model: the extras the outputs need (MissingExtraError); inputs exist and
   hold photos (what is skipped is said); the caption file, intrinsics file and COLMAP model are
   well formed and their keys unambiguous; the output location can be written; an existing
   manifest is one. Nothing is written before these pass (on an object store, one probe object).
2. Discovery (sorted, the same on every machine), the shard, each photo's caption (reusing one
   a caption fallback made on an earlier run) and its camera file entry (--intrinsics, --colmap,
   `<stem>.camera.json`: CameraResolver.describe), and the output names (OutputLayout.of: the
   kinds and the mesh format).
3. Each photo's settings and fingerprint (jobs.fingerprint: model and head sha256, caption,
   camera, size, precision, domain, output options, the input file), and what is already done: a
   photo is done when its last record is `ok`, has the fingerprint this run would write, and every
   output it needs exists — from the manifest (with the parts a killed run left folded in first)
   and, on an object store, **one listing of the output prefix**, never a request per photo.
4. Clips (videos, ROS bags, frame folders) when the engine converts them (this machine only).
5. The warnings a run shows before it starts (inputs skipped, caption and camera files that name
   no photo here).

Rows hold only strings (JSON- and Arrow-friendly): the photo's key, location and output stem, its
caption with source and origin, its fingerprint and settings (JSON), its camera file entry (JSON)
and why it is redone. `row_job` reads one back.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InputError
from ..io import storage
from ..io.captions import Caption, CaptionFallback, CaptionResolver
from ..io.inputs import InputImage, select_shard
from ..io.intrinsics import CameraResolver
from ..io.manifest import read_manifest_checked
from ..io.manifest_parts import iter_manifest, merge_manifest
from ..io.storage import Location
from ..jobs import changed_settings, check_output_folder, discover_inputs, discover_photos, fingerprint, input_file_identity, is_current
from ..jobs.rows import photo_row, row_photo
from ..runtime import precision_name
from .clips import ClipConverter, ClipTotals, ClipWork
from .layout import OutputLayout
from .options import ConvertOptions
from .writing import failure_record, no_caption_message

# What deciding needs of a photo's (or clip's) last record.
DECIDING_FIELDS = ("status", "fingerprint", "settings", "caption", "caption_source", "caption_origin", "frames")


# -- the model and the settings of a run --------------------------------------------------------


@dataclass
class IdentifiedModel:
    """The model of a run, identified before it is loaded (skipping needs no model)."""

    source: Any  # a model folder, or a loaded TR2M
    identity: dict[str, Any]  # name, head_sha256
    spec: Any  # ModelSpec
    precision: str  # what it runs in: fp32, bf16, fp16
    size_policy: Any  # the model's default SizePolicy


def identify_model(model: Any, options: ConvertOptions) -> IdentifiedModel:
    from ..model.preprocess import SizePolicy
    from ..model.tr2m import TR2M
    from ..runtime import resolve_device, resolve_precision
    from ..weights.folder import read_model_folder
    from ..weights.load import model_identity
    from ..weights.resolve import resolve_model

    if isinstance(model, TR2M):
        return IdentifiedModel(model, model_identity(model), model.spec, precision_name(model.precision), model.size_policy)
    folder = resolve_model(model, progress=options.progress)
    spec = read_model_folder(folder)
    precision = resolve_precision(options.precision, resolve_device(options.device))
    return IdentifiedModel(folder, model_identity(folder), spec, precision_name(precision), SizePolicy(token_budget=spec.token_budget))


def manifest_names(options: ConvertOptions) -> tuple[str, str]:
    """`manifest.jsonl` and `summary.json`, or per shard `manifest-K-of-N.jsonl`, …"""
    if options.shard is None:
        return "manifest.jsonl", "summary.json"
    tag = f"{options.shard.index}-of-{options.shard.count}"
    return f"manifest-{tag}.jsonl", f"summary-{tag}.json"


def model_settings(model: IdentifiedModel, options: ConvertOptions) -> dict[str, Any]:
    """The settings every photo and clip of a run shares (see jobs.fingerprint)."""
    return {
        "model": model.identity["name"],
        "head_sha256": model.identity["head_sha256"],
        "size": (options.size or model.size_policy).describe(),
        "precision": model.precision,
        "domain": options.domain,
        "metres_per_model_unit": model.spec.metres_per_output_unit(options.domain),
        "outputs": options.output_settings(),
    }


def photo_settings(
    shared: dict[str, Any], image: InputImage, caption: Caption | None, camera: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything that makes this photo's outputs what they are (see jobs.fingerprint): the run's
    `shared` settings (model_settings, made once per run), its caption, `camera` (the per-photo
    camera a file gives it: CameraResolver.describe) and the input file."""
    try:
        source = ({"bytes": image.listed[0], "mtime_ns": image.listed[1]} if image.listed is not None
                  else input_file_identity(image.path))  # fmt: skip
    except OSError:
        source = None
    return {
        **shared,
        "caption": caption.text if caption is not None else None,
        "camera": camera,
        "input_file": source,
    }


def check_extras(options: ConvertOptions) -> None:
    """The optional packages the requested outputs need, before any work (MissingExtraError)."""
    from ..extras import import_open3d, import_openexr, require

    if "exr" in options.outputs:
        import_openexr("--outputs exr")
    if "ply" in options.outputs and (options.cloud.normals or options.cloud.remove_outliers):
        import_open3d("--normals" if options.cloud.normals else "--remove-outliers")
    if "mesh" in options.outputs and options.mesh.target_triangles is not None:
        require("fast_simplification", "3d", "mesh simplification (--mesh-triangles)")


# -- jobs and rows --------------------------------------------------------------------------------


@dataclass
class PhotoJob:
    """One photo to convert, with everything decided about it."""

    image: InputImage
    caption: Caption
    made_by: dict[str, Any] | None  # {"fingerprint", "settings"} (jobs.fingerprint); None: not known
    camera: dict[str, Any] | None = None  # its camera file entry (CameraResolver.describe); None: the run-wide rules
    redone_because: list[str] | None = None  # the settings that changed since its outputs were made


def job_row(job: PhotoJob) -> dict[str, str]:
    """A job as strings only: what ships to a worker on another machine."""
    made_by = job.made_by or {}
    return {
        **photo_row(job.image),
        "caption": job.caption.text,
        "caption_source": job.caption.source,
        "caption_origin": job.caption.origin,
        "fingerprint": made_by.get("fingerprint", ""),
        "settings": json.dumps(made_by["settings"], sort_keys=True) if made_by else "",
        "camera": json.dumps(job.camera, sort_keys=True) if job.camera is not None else "",
        "redone_because": json.dumps(job.redone_because) if job.redone_because else "",
    }


def _json_column(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return json.loads(value) if isinstance(value, str) and value else None


def row_job(row: dict[str, Any]) -> PhotoJob:
    """The job a row stands for. Rows need only `input`, `path`, `output_stem` and the caption's
    three columns; without a fingerprint the record has none, without a camera the run-wide
    rules give it."""
    caption = Caption(str(row["caption"]), str(row["caption_source"]), str(row["caption_origin"]))
    made_by = None
    if row.get("fingerprint"):
        made_by = {"fingerprint": str(row["fingerprint"]), "settings": _json_column(row, "settings")}
    return PhotoJob(row_photo(row), caption, made_by, _json_column(row, "camera"), _json_column(row, "redone_because"))


# -- the plan -------------------------------------------------------------------------------------


@dataclass
class ConvertPlan:
    out: Location
    layout: OutputLayout
    model: IdentifiedModel
    photos: int  # in this run (this shard)
    jobs: list[PhotoJob] = field(default_factory=list)
    done: list[InputImage] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    redone: dict[str, list[str]] = field(default_factory=dict)  # photo → the settings that changed
    warnings: list[str] = field(default_factory=list)
    inputs_skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    manifest_name: str = "manifest.jsonl"
    summary_name: str = "summary.json"
    found: int = 0  # photos in the inputs, before the shard
    clips: list[ClipWork] = field(default_factory=list)  # to convert
    clip_totals: ClipTotals | None = None  # when the inputs hold clips
    cameras: CameraResolver | None = None  # what clips resolve their cameras with

    @property
    def manifest(self) -> Location:
        return storage.join(self.out, self.manifest_name)

    @property
    def summary_file(self) -> Location:
        return storage.join(self.out, self.summary_name)

    @functools.cached_property
    def rows(self) -> list[dict[str, str]]:
        """The jobs as plain rows (job_row)."""
        return [job_row(job) for job in self.jobs]


def check_output(out: Location) -> None:
    """A local folder that cannot be made (nothing is written), or an object-store prefix that
    cannot be written (a probe object: it checks the credentials): OutputError."""
    if isinstance(out, Path):
        check_output_folder(out)
    else:
        storage.check_writable(out)


def previous_records(out: Location, manifest_name: str) -> dict[str, dict[str, Any]]:
    """Each photo's and clip's last record (the fields deciding needs), after folding in the
    manifest parts a killed run left. A local manifest that is a link or not a manifest at all
    is refused (OutputError)."""
    merge_manifest(out, manifest_name)
    manifest = storage.join(out, manifest_name)
    records = read_manifest_checked(manifest)[0].values() if isinstance(manifest, Path) else iter_manifest(manifest)
    return {record["input"]: {k: record.get(k) for k in DECIDING_FIELDS} for record in records}


def outputs_present(layout: OutputLayout, listed: bool) -> Callable[[InputImage], bool]:
    """Whether all of a photo's outputs exist: stat'ed in a local folder; on an object store
    looked up in one listing of the prefix (made only when `listed`: some photo has a record)."""
    if isinstance(layout.out_dir, Path):
        return layout.is_complete
    present = {info.key for info in storage.list_files(layout.out_dir)} if listed else set()
    return lambda image: all(key in present for key in layout.keys(image).values())


def plan_conversion(
    inputs: Sequence[str | Any],
    out: str | Any,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    caption_fallback: CaptionFallback | None = None,
    precision: str | None = None,
    clips: bool = False,
) -> ConvertPlan:
    """Decide what to convert (see the module docstring). `model`: a registry name, a folder or
    a loaded TR2M (identified, not loaded: its name and head sha256 enter the fingerprints).
    `precision`: what the workers will run in (fp32, fp16, bf16) when this machine cannot tell
    (a Ray driver without the workers' GPUs); None: as this machine resolves `options`.
    `clips`: plan videos, ROS bags (and with `options.sequence` frame folders) too — only an
    engine on this machine converts them; otherwise they are listed as skipped.
    Raises InputError / OutputError / MissingExtraError before anything is written for unusable
    inputs, caption or camera files, output locations or missing extras, WeightsError for a
    model that cannot be found."""
    out = storage.location(out)
    layout = OutputLayout.of(out, options)
    check_extras(options)
    inputs = [inputs] if isinstance(inputs, (str, storage.Url)) or hasattr(inputs, "__fspath__") else list(inputs)
    if clips:
        found = discover_inputs(inputs, recursive=options.recursive, own_output=out, sequence=options.sequence)
    else:
        found = discover_photos(inputs, recursive=options.recursive, own_output=out, exclude=layout.is_output)
    everything = found.images
    warnings: list[str] = []
    clip_captioning = None
    if caption_fallback is not None and found.clips:
        from ..sequences.captions import ClipCaptioning

        clip_captioning = ClipCaptioning(caption_fallback, _clip_opener(options), options.clip.selection, options.scene_captions)
        caption_fallback = clip_captioning  # photos are handed on to the fallback as they are
    resolver = CaptionResolver(options.captions, [*everything, *found.clips], caption_fallback)
    cameras = CameraResolver(options.camera, [*everything, *found.clips])  # a clip may have its camera in a file too
    images = select_shard(everything, options.shard)
    shard_clips = select_shard(found.clips, options.shard)
    if precision is None:
        identified = identify_model(model, options)
    else:  # the device is the workers', not this machine's
        identified = replace(identify_model(model, replace(options, device="cpu")), precision=precision)
    check_output(out)
    manifest_name, summary_name = manifest_names(options)
    previous = previous_records(out, manifest_name)
    plan = ConvertPlan(out=out, layout=layout, model=identified, photos=len(images), manifest_name=manifest_name,
                       summary_name=summary_name, inputs_skipped=[(str(s.path), s.reason) for s in found.skipped],
                       found=len(everything), cameras=cameras)  # fmt: skip

    def reuse(image: InputImage) -> Caption | None:
        """A caption the fallback (e.g. --auto-caption) made for this photo last time."""
        record = previous.get(image.key) or {}
        if options.overwrite:
            return None  # redo everything, the generated captions too
        if caption_fallback is not None and record.get("caption_source") == "generated" and record.get("caption"):
            if record.get("caption_origin") == caption_fallback.name:
                return Caption(record["caption"], "generated", caption_fallback.name)
        return None

    all_captions = resolver.resolve_all([*images, *shard_clips], reuse=reuse)
    captions, clip_captions = all_captions[: len(images)], all_captions[len(images) :]
    if clip_captioning is not None:
        warnings += clip_captioning.errors
    complete = outputs_present(layout, listed=any(image.key in previous for image in images))
    shared = model_settings(identified, options)  # the same for every photo and clip of the run
    todo: list[PhotoJob] = []
    no_caption: list[InputImage] = []
    for image, caption in zip(images, captions):
        camera = cameras.describe(image)
        settings = photo_settings(shared, image, caption, camera)
        made_by = {"fingerprint": fingerprint(settings), "settings": settings}
        record = previous.get(image.key)
        present = record is not None and complete(image)
        if not options.overwrite and is_current(record, made_by["fingerprint"], present):
            plan.done.append(image)
            continue
        # Made with other settings: redone, whether its old files are all there or not (a new
        # output kind or mesh format has no file yet, and is still a change of settings).
        if record is not None and record.get("status") == "ok" and record.get("fingerprint") != made_by["fingerprint"]:
            plan.redone[image.key] = changed_settings(record.get("settings"), settings)
        if caption is None:
            no_caption.append(image)
        else:
            todo.append(PhotoJob(image, caption, made_by, camera, plan.redone.get(image.key)))
    if shard_clips:
        plan.clip_totals = ClipTotals(clips=len(shard_clips))
        for clip, caption in zip(shard_clips, clip_captions):
            scenes = _scene_captions(clip, caption, clip_captioning, previous.get(clip.key))
            work = ClipConverter.prepare(shared, options, clip, caption, scenes, cameras.describe(clip))
            if ClipConverter.current(work, previous.get(clip.key), options, layout):
                plan.clip_totals.current += 1
            else:
                plan.clips.append(work)
    if (no_caption or plan.clips) and not todo and all(work.caption is None for work in plan.clips):
        photos_left, clips_left = len(no_caption), len(plan.clips)
        what = (f"{photos_left} photos" if not clips_left else f"{clips_left} clips" if not photos_left
                else f"{photos_left} photos and {clips_left} clips")  # fmt: skip
        raise InputError(
            f"no caption for any of the {what}: give --caption-file, put <stem>.txt beside each photo"
            f"{' or clip' if clips_left else ''}, --caption-root DIR, --caption TEXT or --domain indoor|outdoor|surgical"
        )
    plan.jobs = todo
    plan.failures = [failure_record(image, no_caption_message(image)) for image in no_caption]
    if found.skipped:
        warnings.insert(0, f"skipped {found.describe_skipped()}")
    warnings += [f"caption not read: {problem}" for problem in resolver.problems]
    if resolver.table and resolver.unmatched_file_keys == len(resolver.table):
        sample = next(iter(resolver.table))
        warnings.append(
            f"no key of {storage.describe(options.captions.caption_file)} names any photo here (keys look like "
            f"{sample!r}, photos like {everything[0].key if everything else found.clips[0].key!r})"
        )
    for origin, count in cameras.unmatched(everything).items():
        if everything and count == len(everything):
            warnings.append(f"no camera in {origin} names any photo here (photos look like {everything[0].key!r})")
    plan.warnings = warnings
    return plan


def _clip_opener(options: ConvertOptions):
    """How the clip captioner opens a clip: as the run will (topic, frame rate of folders)."""
    from ..sequences.sources import open_clip

    return lambda clip: open_clip(clip.path, options.clip, sequence_folder=clip.kind == "frames")


def _scene_captions(clip: InputImage, caption: Caption | None, captioning, record: dict | None) -> list:
    """A clip's captions per scene: made now by the captioner, or (a caption it made on an
    earlier run, reused) read back from that run's record."""
    from ..sequences.captions import SceneCaption

    if captioning is None or not captioning.per_scene or caption is None or caption.source != "generated":
        return []
    if clip.path in captioning.scenes:
        return captioning.scenes[clip.path]
    recorded = ((record or {}).get("settings") or {}).get("scene_captions") or []
    return [SceneCaption(int(first), int(first), str(text)) for first, text in recorded]
