"""Clips in `tr2m convert`: every video, ROS bag topic and folder of numbered frames becomes a
folder of per-frame depth files, a depth video and a clip record (`sequences.layout`).

A clip runs after the photos, one clip at a time, through `sequences.engine` (decode-ahead,
scene cuts, smoothing, full batches of one network size, one text embedding per caption). Its
frames are written by a pool of threads while the model works on the next batch, each recorded in
the clip's `frames.jsonl` as soon as its files exist. When every frame is done the depth video is
rendered (atomically) and `clip.json` written; the run's manifest gets one record for the clip.

**Resuming.** A frame is done when its record is ok, made with the same settings (fingerprint)
and its files exist. Without smoothing, only frames not done are decoded and run. With smoothing,
a frame's depth depends on the frames before it, so the smoother's state is saved (with the scene
detector's) after each batch whose frames are all written; a rerun restores it and continues
with the next frame, exactly as an uninterrupted run would. Frames after the saved state that
are already done run through the model again (to carry the smoothing on) but are not rewritten.

**Damage.** A video that cannot be decoded past frame N keeps frames 0…N−1 (written, recorded,
in the depth video), and the clip is recorded as failed at frame N. An unreadable frame of a
folder fails alone.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import Tr2mError
from ..io.atomic import make_folders, write_json
from ..io.captions import Caption
from ..io.depth_files import DEPTH_UNIT, read_depth_png16, read_depth_tiff
from ..io.inputs import InputImage
from ..io.intrinsics import Intrinsics
from ..io.manifest import ManifestLog, describe_os_error, read_manifest
from ..jobs import fingerprint, input_file_identity, is_current, jsonable, now_iso
from ..sequences.captions import SceneCaption, caption_at
from ..sequences.frames import FrameReadError, index_width, selected_span
from ..sequences.layout import ClipLayout
from ..sequences.preview_video import PreviewFrames, render_preview_video
from ..sequences.sources import camera_info, clip_frames, describe, frame_count, open_clip
from .writing import DEPTH_QUANTITY, caption_fields, check_depth, depth_statistics, no_caption_message, write_depth_files

STATE_VERSION = "1"


def clip_identity(clip: InputImage) -> dict[str, Any] | None:
    """What tells a replaced recording from the one converted: a file's size and time; for a
    folder (frames, a ROS 2 bag) the count, total size and latest time of its files."""
    try:
        if not clip.path.is_dir():
            return input_file_identity(clip.path)
        entries = [e for e in os.scandir(clip.path) if e.is_file() and not e.name.startswith(".")]
        stats = [e.stat() for e in entries]
        return {"files": len(stats), "bytes": sum(s.st_size for s in stats), "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
    except OSError:
        return None


def clip_settings(
    base: dict[str, Any], options, clip: InputImage, caption: Caption | None, scenes: list[SceneCaption], camera: dict | None = None
) -> tuple[dict, dict]:
    """(the clip's settings, its frames' settings): everything that makes their outputs what
    they are. A frame's depth does not depend on where the clip ends (smoothing looks back
    only), so `end` and `max_frames` are the clip's, not its frames'."""
    selection = options.clip.selection
    frame = {
        **base,
        "caption": caption.text if caption is not None else None,
        "scene_captions": [[s.first, s.text] for s in scenes],
        "input_file": clip_identity(clip),
        "camera": camera,  # a camera file's entry for the clip (--intrinsics, a sidecar), if any
        "clip": {"topic": options.clip.topic, "camera_info_topic": options.clip.camera_info_topic, "fps": options.clip.fps},
        "stabilize": options.stabilize.describe() if options.stabilize.enabled else None,
    }
    if options.stabilize.enabled:
        # Smoothing runs over the kept frames from the start: these change every frame.
        frame["selection"] = {"every": selection.every, "start": str(selection.start) if selection.start else None}
    whole = {**frame, "selection": selection.describe()}
    return whole, frame


@dataclass
class ClipTotals:
    """Counts over the clips of a run, for the summary."""

    clips: int = 0
    converted: int = 0  # clips completed now
    current: int = 0  # clips already complete and current
    failed: int = 0
    frames: int = 0  # frames converted now
    frames_current: int = 0
    frames_failed: int = 0

    def words(self) -> str:
        """'2 of 3 clips converted, 1 already done (240 frames, 10 already done)'."""
        parts = [f"{self.converted} of {self.clips} clip{'' if self.clips == 1 else 's'} converted"]
        if self.current:
            parts.append(f"{self.current} already done")
        if self.failed:
            parts.append(f"{self.failed} failed")
        frames = [f"{self.frames} frame{'' if self.frames == 1 else 's'}"] if self.frames or self.frames_failed else []
        if self.frames_current and frames:
            frames.append(f"{self.frames_current} already done")
        if self.frames_failed:
            frames.append(f"{self.frames_failed} failed")
        return f"{', '.join(parts)} ({', '.join(frames)})" if frames else ", ".join(parts)


@dataclass
class ClipWork:
    """A clip to convert, its caption(s) and its settings."""

    clip: InputImage
    caption: Caption | None
    scenes: list[SceneCaption]
    settings: dict[str, Any]
    fingerprint: str
    frame_settings: dict[str, Any]
    frame_fingerprint: str


@dataclass
class _ClipState:
    """One clip while it runs."""

    clip: InputImage
    caption: Caption
    scenes: list[SceneCaption]
    layout: ClipLayout
    frames_log: ManifestLog
    frame_print: str
    frame_settings: dict[str, Any]
    intrinsics: Intrinsics | None = None
    pending: set[int] = field(default_factory=set)
    written: int = 0
    current: int = 0
    recomputed: int = 0  # current frames run again only to carry the smoothing on
    failed: list[tuple[int, str]] = field(default_factory=list)
    stopped: FrameReadError | None = None
    highest: int = -1
    saved_state: int = -1
    resumed_after: int = -1  # the frame a saved smoothing state carried this run on from
    preview: PreviewFrames | None = None

    def frame_key(self, index: int) -> str:
        return f"{self.clip.key}#{self.layout.frame_name(index)}"


class ClipConverter:
    """Converts the clips of one run (see the module docstring). `run`: the photo run's state
    (options, progress, manifest, signals, summary, times)."""

    def __init__(self, run, tr2m, totals: ClipTotals) -> None:
        self.run = run
        self.options = run.options
        self.tr2m = tr2m
        self.totals = totals
        self.batch_size = self.options.batch_size
        self.write_pool: futures.ThreadPoolExecutor | None = None
        self.writes: dict[futures.Future, tuple[_ClipState, int]] = {}

    # -- deciding what is done ------------------------------------------------------------------

    @staticmethod
    def prepare(
        shared: dict[str, Any], options, clip: InputImage, caption: Caption | None, scenes: list[SceneCaption], camera=None
    ) -> ClipWork:
        """A clip with its settings and fingerprints (`shared`: the run's model settings;
        `camera`: what a camera file says about the clip)."""
        whole, frame = clip_settings(shared, options, clip, caption, scenes, camera)
        return ClipWork(clip, caption, scenes, whole, fingerprint(whole), frame, fingerprint(frame))

    @staticmethod
    def current(work: ClipWork, record: dict | None, options, layout) -> bool:
        """A clip whose record is ok with these settings and whose clip record (and video)
        exist: nothing to open."""
        if options.overwrite or not is_current(record, work.fingerprint, True):
            return False
        clip_layout = ClipLayout(layout.out_dir, work.clip.output_stem, options.outputs, suffixes=layout.suffixes)
        if not clip_layout.clip_record.is_file() or (clip_layout.preview and not clip_layout.preview_video.is_file()):
            return False
        frames = [r for r in read_manifest(clip_layout.frames_manifest).values() if r.get("status") == "ok"]
        return len(frames) == record.get("frames") and all(
            (clip_layout.out_dir / path).is_file() for r in frames for path in (r.get("outputs") or {}).values()
        )

    # -- running --------------------------------------------------------------------------------

    def convert_all(self, work: list[ClipWork]) -> None:
        self.write_pool = futures.ThreadPoolExecutor(self.options.write_workers, thread_name_prefix="tr2m-write")
        try:
            for item in work:
                self._record(self.convert_clip(item))
        finally:
            self._collect(wait_all=True)
            self.write_pool.shutdown(wait=True, cancel_futures=True)

    def _record(self, record: dict[str, Any]) -> None:
        """The clip's line in the run's manifest, and its count."""
        with self.run.signals.deferred():
            self.run.manifest.append(record)
            if record["status"] == "ok":
                self.totals.converted += 1
            else:
                self.totals.failed += 1
                self.run.summary.fail(record["input"], record.get("error") or "")
                if record.get("frames") is None:  # the clip never started: say why now
                    self.run.progress.error(record.get("error") or record["input"])

    def convert_clip(self, work: ClipWork) -> dict[str, Any]:
        from ..model.inference import DepthPredictor
        from ..sequences.engine import ClipSmoother, run_clip
        from ..sequences.scenes import SceneCutDetector
        from .worker import cloud_grid

        options, started = self.options, time.perf_counter()
        clip, caption, scenes = work.clip, work.caption, work.scenes
        if caption is None:
            return self._clip_failure(clip, caption, no_caption_message(clip), started)
        try:
            source = open_clip(clip.path, options.clip, sequence_folder=clip.kind == "frames")
        except Tr2mError as exc:
            return self._clip_failure(clip, caption, str(exc), started)
        layout = ClipLayout(
            self.run.layout.out_dir, clip.output_stem, options.outputs, width=index_width(frame_count(source)),
            suffixes=self.run.layout.suffixes,
        )  # fmt: skip
        self.run.progress.add_total(selected_span(options.clip.selection, frame_count(source), source.fps)[2])
        try:
            make_folders(layout.out_dir, clip.output_stem)
            frames_log = ManifestLog(layout.frames_manifest)
        except (OSError, Tr2mError) as exc:
            message = str(exc) if isinstance(exc, Tr2mError) else describe_os_error(exc)
            return self._clip_failure(clip, caption, f"{clip.key}: cannot write {layout.folder} ({message})", started)
        state = _ClipState(clip, caption, scenes, layout, frames_log, work.frame_fingerprint, work.frame_settings)
        if layout.preview:
            times = {r.get("frame"): r.get("time_s") for r in frames_log.previous.values()}
            state.preview = PreviewFrames(
                layout.folder,
                fallback=lambda index: self._depth_on_disk(layout, index),
                has_fallback=lambda index: any(p.is_file() for k, p in layout.frame_paths(index).items() if k in ("tiff", "npy", "png16")),
                times=times.get,
            )
        done = self._done_test(state)
        stabilize = options.stabilize.enabled
        smoother = ClipSmoother(options.stabilize, source.fps, source.kind != "frames", checkpoints=True) if stabilize else None
        detector = SceneCutDetector() if stabilize else None
        resume_after = self._restore(state, smoother, detector, done) if stabilize else -1
        state.resumed_after = resume_after
        predictor = DepthPredictor(
            self.tr2m, batch_size=self.batch_size, size=options.size, domain=options.domain, adjust=smoother,
            times=self.run.times, stage_timing=options.stage_timing,
        )  # fmt: skip
        wanted = (lambda i: i > resume_after) if stabilize else (lambda i: not done(i))
        grid = cloud_grid(options)  # clouds, meshes, renders: in the frame's colours, as a photo's
        try:
            frames = clip_frames(source, options.clip.selection, wanted=wanted)
            results = run_clip(
                predictor, frames, lambda index: caption_at(scenes, index, caption.text), name=clip.key,
                detector=detector, keep=lambda i: not done(i), cloud_grid=grid,
            )  # fmt: skip
            for result in results:
                self._handle(state, result, source, smoother)
                self._collect()
                self._checkpoint(state, smoother)
        except FrameReadError as exc:
            state.stopped = exc
        finally:
            self.batch_size = predictor.batch_size
            self._collect(wait_all=True)
            self._checkpoint(state, smoother)
            try:
                frames_log.close()
            except Tr2mError as exc:
                self.run.progress.warn(str(exc))
        return self._complete(state, source, work, smoother, started)

    def _done_test(self, state: _ClipState):
        previous, layout = state.frames_log.previous, state.layout
        overwrite = self.options.overwrite

        def done(index: int) -> bool:
            if overwrite:
                return False
            record = previous.get(state.frame_key(index))
            complete = layout.frame_complete(index) and (state.preview is None or state.preview.has(index))
            return is_current(record, state.frame_print, complete)

        return done

    # -- one frame ------------------------------------------------------------------------------

    def _handle(self, state: _ClipState, result, source, smoother) -> None:
        index = result.frame.index
        state.highest = max(state.highest, index)
        progress = self.run.progress
        if result.error is not None and result.item.keep:
            self._frame_failed(state, index, result.error, result.seconds)
            return
        if result.depth is None or not result.item.keep:
            state.current += 1
            state.recomputed += result.depth is not None
            self.totals.frames_current += 1
            progress.advance()
            return
        if state.intrinsics is None:
            try:
                state.intrinsics = self._intrinsics(state.clip, source, *result.depth.shape)
            except Tr2mError as exc:
                self._frame_failed(state, index, str(exc), result.seconds)
                return
        while len(self.writes) >= 2 * self.options.write_workers + self.batch_size:
            self._collect(block=True)
        state.pending.add(index)
        self.writes[self.write_pool.submit(self._write, state, result)] = (state, index)

    def _frame_failed(self, state: _ClipState, index: int, error: str, seconds: float = 0.0) -> None:
        record = {
            "input": state.frame_key(index), "clip": state.clip.key, "frame": index, "status": "failed",
            "error": error, "seconds": round(seconds, 4), "finished": now_iso(),
        }  # fmt: skip
        state.frames_log.append(record)
        state.failed.append((index, error))
        self.totals.frames_failed += 1
        self.run.progress.error(error)
        self.run.progress.advance()

    def _write(self, state: _ClipState, result) -> dict[str, Any]:
        start = time.perf_counter()
        frame, depth, index = result.frame, result.depth, result.frame.index
        key = state.frame_key(index)
        try:
            check_depth(depth, key)
            height, width = depth.shape
            paths = state.layout.frame_paths(index)
            caption = caption_at(state.scenes, index, state.caption.text)
            record: dict[str, Any] = {
                "input": key, "clip": state.clip.key, "frame": index, "status": "ok",
                "time_s": None if frame.time_s is None else round(frame.time_s, 6),
                "timestamp_ns": frame.timestamp_ns, "source": frame.source, "scene_cut": result.item.cut,
                "caption": caption, "size": [height, width], "network_size": list(result.network_size or ()),
                "unit": DEPTH_UNIT, "depth_m": depth_statistics(depth),
                "fingerprint": state.frame_print,
            }  # fmt: skip
            metadata = {
                "quantity": DEPTH_QUANTITY, "model": self.tr2m.spec.name, "caption": caption,
                "caption_source": state.caption.source, "domain": self.options.domain,
                "input": state.clip.key, "frame": index, "time_s": record["time_s"], "timestamp_ns": frame.timestamp_ns,
                "size": [height, width], "network_size": record["network_size"],
                "intrinsics": state.intrinsics.to_json(), "fingerprint": state.frame_print,
                "smoothing": self.options.stabilize.describe() if self.options.stabilize.enabled else None,
            }  # fmt: skip
            record.update(
                write_depth_files(
                    paths, depth, result.item.colors, state.intrinsics, metadata, self.options,
                    name=f"{state.clip.key} frame {index}", model_name=self.tr2m.spec.name,
                )  # fmt: skip
            )
            if state.preview is not None:
                state.preview.add(index, frame.time_s, depth)
            record["outputs"] = {kind: state.layout.relative(path) for kind, path in paths.items()}
            record["seconds"] = round(result.seconds + time.perf_counter() - start, 4)
            record["finished"] = now_iso()
            return record
        except Tr2mError as exc:
            return {"input": key, "frame": index, "status": "failed", "error": str(exc)}
        except OSError as exc:
            target = exc.filename or state.layout.folder
            return {"input": key, "frame": index, "status": "failed", "error": f"{key}: cannot write {target} ({describe_os_error(exc)})"}
        finally:
            self.run.times.add("write", time.perf_counter() - start)

    def _collect(self, *, block: bool = False, wait_all: bool = False) -> None:
        if not self.writes:
            return
        if wait_all:
            futures.wait(list(self.writes))
        elif block:
            futures.wait(list(self.writes), return_when=futures.FIRST_COMPLETED)
        for future in [f for f in self.writes if f.done()]:
            state, index = self.writes.pop(future)
            with self.run.signals.deferred():  # a frame's files are written: its record must follow
                state.pending.discard(index)
                record = future.result()
                if record["status"] == "ok":
                    state.frames_log.append(record)
                    state.written += 1
                    self.totals.frames += 1
                    self.run.progress.advance()
                else:
                    self._frame_failed(state, index, record["error"])

    # -- smoothing state ------------------------------------------------------------------------

    def _checkpoint(self, state: _ClipState, smoother) -> None:
        """Save the smoothing state after the last batch whose frames are all written."""
        if smoother is None or not smoother.checkpoints:
            return
        safe = min(state.pending) - 1 if state.pending else state.highest
        usable = [(index, tensors) for index, tensors in smoother.checkpoints if index <= safe]
        if not usable or usable[-1][0] <= state.saved_state:
            return
        index, tensors = usable[-1]
        from safetensors.torch import save_file

        from ..io.atomic import atomic_path

        try:
            with atomic_path(state.layout.stabilizer_state, fsync=False) as temp:
                save_file(tensors, str(temp), metadata={"fingerprint": state.frame_print, "version": STATE_VERSION})
            state.saved_state = index
        except OSError as exc:
            self.run.progress.warn(f"{state.layout.stabilizer_state}: smoothing state not saved ({describe_os_error(exc)})")

    def _restore(self, state: _ClipState, smoother, detector, done) -> int:
        """The last frame a saved smoothing state covers (−1: start from the first frame). The
        state is used only when made with the same settings and every frame it covers is done."""
        path = state.layout.stabilizer_state
        if self.options.overwrite or not path.is_file():
            return -1
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), "pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
            index, frames = int(tensors["index"][0]), int(tensors["frames"][0])
        except Exception:  # noqa: BLE001 - a damaged or foreign state only costs recomputing
            return -1
        if metadata.get("fingerprint") != state.frame_print or metadata.get("version") != STATE_VERSION:
            return -1
        covered = [r["frame"] for r in state.frames_log.previous.values() if isinstance(r.get("frame"), int) and r["frame"] <= index]
        if frames != len(covered) or not all(done(i) for i in covered):
            return -1
        scene_state = smoother.load_state_dict(tensors)
        if detector is not None and scene_state is not None:
            detector.load_state(*scene_state)
        state.saved_state = index
        return index

    # -- the end of a clip ----------------------------------------------------------------------

    def _intrinsics(self, clip: InputImage, source, height: int, width: int) -> Intrinsics:
        """The clip's camera: from a camera file (--intrinsics, --colmap, `drive.camera.json`
        beside it), else --fx/--fov, else the recording's CameraInfo, else the default."""
        cameras, camera = self.run.cameras, self.options.camera
        recorded = camera_info(source)
        if cameras.describe(clip) is not None or recorded is None or camera.fx is not None or camera.fov_deg is not None:
            return cameras.resolve(clip, height, width)
        return recorded.for_size(height, width)

    def _depth_on_disk(self, layout: ClipLayout, index: int) -> np.ndarray | None:
        """A done frame's depth from its files, for the depth video (when its preview-size copy
        is gone: it is removed once a video is written and a depth file holds the same)."""
        paths = layout.frame_paths(index)
        try:
            if "tiff" in paths and paths["tiff"].is_file():
                return read_depth_tiff(paths["tiff"])[0]
            if "npy" in paths and paths["npy"].is_file():
                return np.load(paths["npy"], allow_pickle=False)
            if "png16" in paths and paths["png16"].is_file():
                return read_depth_png16(paths["png16"])
        except (OSError, ValueError, Tr2mError):
            return None
        return None

    def _complete(self, state: _ClipState, source, work: ClipWork, smoother, started: float) -> dict[str, Any]:
        layout, clip = state.layout, state.clip
        ok_frames = sorted(
            r["frame"] for r in state.frames_log.records() if r.get("status") == "ok" and isinstance(r.get("frame"), int)
        )
        record: dict[str, Any] = {
            "input": clip.key, "path": str(clip.path), "kind": "clip", "clip_kind": source.kind,
            **caption_fields(state.caption),
            "frames": len(ok_frames), "frames_converted": state.written, "frames_current": state.current,
            "frames_failed": len(state.failed), "frames_recomputed": state.recomputed, "unit": DEPTH_UNIT,
            "outputs": {"folder": layout.relative(layout.folder), "clip": layout.relative(layout.clip_record),
                        "frames": layout.relative(layout.frames_manifest)},
            "fingerprint": work.fingerprint, "settings": work.settings,
        }  # fmt: skip
        if state.resumed_after >= 0:
            record["resumed_after_frame"] = state.resumed_after
        video = None
        if state.preview is not None and ok_frames:
            try:
                # A clip's video always has its colour bar: its one range is what makes frames compare.
                preview = dataclasses.replace(self.options.preview, colorbar=True)
                with self.run.times.measure("preview_video"):
                    video = render_preview_video(layout.preview_video, state.preview, source.fps, preview, ok_frames)
                record["outputs"]["preview_video"] = layout.relative(layout.preview_video)
                if layout.frame_kinds:  # the depth files hold the same: the preview-size copies can go
                    state.preview.clear()
            except (OSError, ValueError, Tr2mError) as exc:
                state.failed.append((-1, f"{layout.preview_video}: depth video not written ({exc})"))
        errors = [error for _, error in state.failed]
        if state.stopped is not None:
            record["failed_at_frame"] = state.stopped.index
            errors.insert(0, str(state.stopped))
        record["status"] = "failed" if errors else "ok"
        if errors:
            record["error"] = errors[0] + (f" (and {len(errors) - 1} more: see {layout.relative(layout.frames_manifest)})" if len(errors) > 1 else "")
        try:
            write_json(layout.clip_record, self._clip_json(state, source, record, video, ok_frames, smoother))
        except OSError as exc:
            record["status"], record["error"] = "failed", f"{layout.clip_record}: not written ({describe_os_error(exc)})"
        record["seconds"] = round(time.perf_counter() - started, 4)
        record["finished"] = now_iso()
        return record

    def _clip_json(self, state: _ClipState, source, record: dict, video: dict | None, ok_frames: list[int], smoother) -> dict[str, Any]:
        times = [r.get("time_s") for r in state.frames_log.records() if r.get("status") == "ok"]
        times = sorted(t for t in times if t is not None)
        intervals = np.diff(times) if len(times) > 1 else np.empty(0)
        options = self.options
        return {
            "input": state.clip.key,
            "source": describe(source),
            "unit": DEPTH_UNIT,
            "depth": f"float32 {DEPTH_QUANTITY}, metres, one file per frame named by its index in the source",
            "status": record["status"],
            "error": record.get("error"),
            "failed_at_frame": record.get("failed_at_frame"),
            "frames": {"converted": len(ok_frames), "first": ok_frames[0] if ok_frames else None,
                       "last": ok_frames[-1] if ok_frames else None, "failed": [i for i, _ in state.failed if i >= 0]},
            "selection": options.clip.selection.describe(),
            "fps": source.fps,
            "converted_fps": round(1.0 / float(np.median(intervals)), 4) if intervals.size and np.median(intervals) > 0 else None,
            "duration_s": round(times[-1] - times[0], 6) if len(times) > 1 else None,
            "size": None if state.intrinsics is None else [state.intrinsics.height, state.intrinsics.width],
            "intrinsics": None if state.intrinsics is None else state.intrinsics.to_json(),
            "camera_info": None if camera_info(source) is None else camera_info(source).to_json(),
            **caption_fields(state.caption),
            "scene_captions": [{"first_frame": s.first, "from_frame": s.frame, "caption": s.text} for s in state.scenes],
            "smoothing": (
                options.stabilize.describe() | {"time_constant_used": smoother.stabilizer.time_constant, "in": "seconds" if smoother.unit == "s" else "frames"}
                if smoother is not None
                else {"enabled": False}
            ),
            "preview_video": None if video is None else {"file": state.layout.preview_video.name, **video},
            "model": self.tr2m.spec.name,
            "fingerprint": record["fingerprint"],
            "finished": now_iso(),
            "settings": jsonable(record["settings"]),
        }

    def _clip_failure(self, clip: InputImage, caption: Caption | None, error: str, started: float) -> dict[str, Any]:
        return {
            "input": clip.key, "path": str(clip.path), "kind": "clip", "status": "failed", **caption_fields(caption),
            "error": error, "seconds": round(time.perf_counter() - started, 4), "finished": now_iso(),
        }  # fmt: skip

