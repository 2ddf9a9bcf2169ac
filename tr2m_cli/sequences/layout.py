"""Where a clip's outputs go: one folder per clip under the output folder, mirroring the inputs.

    videos/drive.mp4  →  OUT/videos/drive/000000.depth.tiff   float32 metres, one per kept frame
                                         000000.points.ply …  any per-photo output kind, per frame
                                         drive.preview.mp4    colourised depth video, one colour
                                                              range for the clip, colour bar
                                         clip.json            fps, frames, intrinsics, caption,
                                                              smoothing, preview range
                                         frames.jsonl         one record per frame (time, stamp,
                                                              depth statistics, status)

Frames are named by their index in the source (six digits, more past a million frames), so
`--every` and `--start` never rename a frame and a rerun finds its files.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..io.own_files import OUTPUT_SUFFIXES

# The per-photo kinds written per frame (by convert.writing.write_depth_files, which photos share;
# a new kind joins here once it writes it). Not the PNG preview (a clip has its video), nor the
# intrinsics (one camera per clip: in clip.json).
FRAME_KINDS = ("tiff", "exr", "ply", "npy", "png16", "mesh", "render")
FRAME_SUFFIXES = {kind: OUTPUT_SUFFIXES[kind] for kind in FRAME_KINDS}
PREVIEW_VIDEO_SUFFIX = OUTPUT_SUFFIXES["preview_video"]
CLIP_RECORD = "clip.json"
FRAMES_MANIFEST = "frames.jsonl"
STABILIZER_STATE = ".tr2m-smoothing-state.safetensors"  # hidden: walkers never take it for an input


class ClipLayout:
    """The files of one clip. `output_stem`: the clip's place under `out_dir` (its relative path
    without suffix, as for photos); `kinds`: the requested output kinds."""

    def __init__(
        self,
        out_dir: str | Path,
        output_stem: PurePosixPath | str,
        kinds: tuple[str, ...],
        width: int = 6,
        suffixes: dict[str, str] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.stem = PurePosixPath(output_stem)
        self.folder = self.out_dir / self.stem.as_posix()
        self.frame_kinds = tuple(k for k in kinds if k in FRAME_SUFFIXES)
        self.suffixes = {**FRAME_SUFFIXES, **{k: v for k, v in (suffixes or {}).items() if k in FRAME_SUFFIXES}}  # mesh: by format
        self.preview = "preview" in kinds
        self.width = width

    def frame_name(self, index: int) -> str:
        return f"{index:0{self.width}d}"

    def frame_paths(self, index: int) -> dict[str, Path]:
        name = self.frame_name(index)
        return {kind: self.folder / f"{name}{self.suffixes[kind]}" for kind in self.frame_kinds}

    def frame_complete(self, index: int) -> bool:
        """Every per-frame file exists (writes are atomic, so existing means complete)."""
        return all(path.is_file() for path in self.frame_paths(index).values())

    @property
    def preview_video(self) -> Path:
        return self.folder / f"{self.stem.name}{PREVIEW_VIDEO_SUFFIX}"

    @property
    def clip_record(self) -> Path:
        return self.folder / CLIP_RECORD

    @property
    def frames_manifest(self) -> Path:
        return self.folder / FRAMES_MANIFEST

    @property
    def stabilizer_state(self) -> Path:
        return self.folder / STABILIZER_STATE

    def relative(self, path: Path) -> str:
        """A path as the manifests name it: relative to the output folder."""
        return path.relative_to(self.out_dir).as_posix()
