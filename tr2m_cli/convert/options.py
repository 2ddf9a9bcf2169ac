"""Everything a conversion run can be told, as frozen data with the defaults in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import InputError
from ..io.captions import CaptionRules
from ..io.images import DEFAULT_MAX_PIXELS
from ..io.inputs import Shard
from ..io.intrinsics import CameraOptions
from ..io.mesh import MeshOptions
from ..io.pointcloud import PointCloudOptions
from ..io.preview import PreviewOptions
from ..io.render import RenderOptions
from ..model.preprocess import SizePolicy
from ..sequences.sources import ClipOptions
from ..sequences.stabilize import StabilizeOptions

OUTPUT_KINDS = ("tiff", "preview", "ply", "npy", "png16", "exr", "mesh", "render")
DEFAULT_OUTPUTS = ("tiff", "preview")
GRID_KINDS = ("ply", "mesh", "render")  # built on the point cloud's sampling grid, in the photo's colours


def parse_outputs(text: str) -> tuple[str, ...]:
    """'tiff,ply' → ('tiff', 'ply'); 'all' → every kind."""
    names = [name.strip().lower() for name in str(text).split(",") if name.strip()]
    if names == ["all"]:
        return OUTPUT_KINDS
    unknown = [name for name in names if name not in OUTPUT_KINDS]
    if unknown or not names:
        raise InputError(f"--outputs {text!r}: choose from {', '.join(OUTPUT_KINDS)} (comma-separated) or all")
    return tuple(dict.fromkeys(names))


def _default_workers() -> int:
    """Threads per background pool (decoding, writing): enough to keep a GPU fed with 12 MP
    photos on a workstation, without swamping a laptop."""
    return max(2, min(8, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class ConvertOptions:
    """How `convert` runs. `size`: None for the model's default token budget, or a SizePolicy
    (a token budget, or a fixed network size such as the paper's 434×560)."""

    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    captions: CaptionRules = CaptionRules()
    recursive: bool = True
    shard: Shard | None = None
    overwrite: bool = False  # False: photos whose outputs are current (same settings) are skipped
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 4
    size: SizePolicy | None = None
    preview: PreviewOptions = PreviewOptions()
    camera: CameraOptions = CameraOptions()
    cloud: PointCloudOptions = PointCloudOptions()
    mesh: MeshOptions = MeshOptions()
    render: RenderOptions = RenderOptions()
    decode_workers: int = field(default_factory=_default_workers)  # 0: decode in the main thread
    write_workers: int = field(default_factory=_default_workers)
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # larger photos fail alone; None: no limit
    progress: bool = True
    stage_timing: bool = False  # synchronise the device between stages, for exact per-stage times
    # Clips (videos, ROS bags, and with `sequence` folders of numbered frames): which frames, the
    # bag topic, the frame rate of frame folders; smoothing over time; captions per scene.
    sequence: bool = False
    clip: ClipOptions = ClipOptions()
    stabilize: StabilizeOptions = StabilizeOptions()
    scene_captions: bool = False  # with a caption fallback (--auto-caption): one caption per scene

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", tuple(dict.fromkeys(self.outputs)))
        unknown = [o for o in self.outputs if o not in OUTPUT_KINDS]
        if unknown or not self.outputs:
            raise InputError(f"outputs {list(self.outputs)}: choose from {', '.join(OUTPUT_KINDS)}")
        if self.batch_size < 1:
            raise InputError(f"batch size {self.batch_size}: must be at least 1")
        if self.decode_workers < 0 or self.write_workers < 1:
            raise InputError("workers: decode workers 0 or more, write workers at least 1")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise InputError(f"pixel limit {self.max_pixels}: must be positive")

    def output_settings(self) -> dict:
        """The options that change the files written (a photo's fingerprint holds them): the
        kinds, and the options of each kind written. Running options (device, batch size,
        workers) are not among them."""
        from ..jobs.summary import jsonable

        settings: dict = {"kinds": sorted(self.outputs), "camera": jsonable(self.camera)}
        if "preview" in self.outputs:
            settings["preview"] = jsonable(self.preview)
        if self.grid_outputs:
            settings["cloud"] = jsonable(self.cloud)
        if "mesh" in self.outputs:
            settings["mesh"] = jsonable(self.mesh)
        if "render" in self.outputs:
            settings["render"] = jsonable(self.render)
        return settings

    @property
    def grid_outputs(self) -> tuple[str, ...]:
        """The requested kinds built on the point-cloud grid (they need the photo's colours)."""
        return tuple(kind for kind in self.outputs if kind in GRID_KINDS)

    @property
    def domain(self) -> str | None:
        """The scene domain: supplies a generic caption and converts model units (surgical)."""
        return self.captions.domain
