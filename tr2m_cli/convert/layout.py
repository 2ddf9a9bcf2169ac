"""Where each photo's outputs go: a tree under the output folder mirroring the inputs.

    photos/kitchen/a.jpg  →  OUT/kitchen/a.depth.tiff   float32 metres (+ metadata)
                             OUT/kitchen/a.preview.png  colourised depth
                             OUT/kitchen/a.points.ply   coloured point cloud (metres)
                             OUT/kitchen/a.depth.npy    float32 metres
                             OUT/kitchen/a.depth16.png  uint16 millimetres
                             OUT/kitchen/a.depth.exr    float32 metres (OpenEXR)
                             OUT/kitchen/a.mesh.glb     triangle mesh (metres; .ply/.obj by format)
                             OUT/kitchen/a.render.png   the cloud seen from beside the camera
                             OUT/kitchen/a.intrinsics.json  the camera used (always written)

Every kind ends in its own two-part suffix, so names never collide between kinds or photos
(photos that share a stem keep their suffix in it: a.jpg.depth.tiff, a.png.depth.tiff).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..io import storage
from ..io.inputs import InputImage
from ..io.own_files import MESH_SUFFIXES, OUTPUT_SUFFIXES, is_output_name

SUFFIXES = OUTPUT_SUFFIXES  # one table for the writer and the walker that must never read them back


class OutputLayout:
    """The same keys under a local folder and under an object-store prefix (io.storage)."""

    def __init__(self, out_dir: str | Path | storage.Url, outputs: tuple[str, ...], mesh_format: str = "glb") -> None:
        self.out_dir = out_dir if isinstance(out_dir, storage.Url) else Path(out_dir)
        self.kinds = (*outputs, "intrinsics")
        self.suffixes = {**SUFFIXES, "mesh": MESH_SUFFIXES[mesh_format]}

    @classmethod
    def of(cls, out_dir: str | Path | storage.Url, options) -> "OutputLayout":
        """The layout a run with these ConvertOptions writes (its kinds, its mesh format): the
        planner and every worker make theirs here, so they agree on every name."""
        return cls(out_dir, options.outputs, options.mesh.format)

    def keys(self, image: InputImage) -> dict[str, str]:
        """Each output's posix key relative to the output folder."""
        stem = image.output_stem.as_posix()
        return {kind: stem + self.suffixes[kind] for kind in self.kinds}

    def paths(self, image: InputImage) -> dict[str, Path | storage.Url]:
        return {kind: storage.join(self.out_dir, key) for kind, key in self.keys(image).items()}

    def folder(self, image: InputImage) -> PurePosixPath:
        """The photo's output folder, relative to the output folder."""
        return image.output_stem.parent

    def is_complete(self, image: InputImage) -> bool:
        """Every requested output exists (writes are atomic, so existing means complete)."""
        return all(storage.is_file(path) for path in self.paths(image).values())

    def relative(self, path: Path | storage.Url) -> str:
        return storage.relative_key(path, self.out_dir)

    def is_output(self, path: Path | storage.Url) -> bool:
        """A file this layout writes under the output folder (never to be taken as an input:
        previews and 16-bit PNGs are images too)."""
        if isinstance(path, storage.Url) != isinstance(self.out_dir, storage.Url):
            return False
        try:
            self.relative(path)
        except ValueError:
            return False
        return is_output_name(path.name)
