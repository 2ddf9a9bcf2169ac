"""The names of what tr2m writes, in one place, so that no command ever reads them back as input.

`tr2m convert photos --out photos/depth` puts previews (PNG) and 16-bit depth PNGs inside the
photo folder; without care the next run takes them for photos (3 → 12 → 48 "photos"). So the
walker skips, wherever they are:
- files whose names end in one of tr2m's output suffixes (`OUTPUT_SUFFIXES`, one per output kind:
  later kinds are added here);
- folders that hold a tr2m run: its run lock (`.tr2m-run.lock`, made by every run) or a tr2m
  manifest (`manifest.jsonl`, `manifest-K-of-N.jsonl`, recognised by its first record), except the
  output folder of the run that is walking, whose own outputs are skipped by name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

OUTPUT_SUFFIXES = {
    "tiff": ".depth.tiff",
    "preview": ".preview.png",
    "ply": ".points.ply",
    "npy": ".depth.npy",
    "png16": ".depth16.png",
    "exr": ".depth.exr",
    "mesh": ".mesh.glb",  # the default --mesh-format; MESH_SUFFIXES has every format's
    "render": ".render.png",
    "intrinsics": ".intrinsics.json",
    "preview_video": ".preview.mp4",  # a clip's depth video (a video is an input too: never read back)
}
MESH_SUFFIXES = {"glb": ".mesh.glb", "ply": ".mesh.ply", "obj": ".mesh.obj"}
RUN_LOCK = ".tr2m-run.lock"
MANIFEST_PATTERN = re.compile(r"^manifest(-\d+-of-\d+)?\.jsonl$")


def is_output_name(name: str) -> bool:
    """A file name tr2m gives to an output."""
    return name.lower().endswith((*OUTPUT_SUFFIXES.values(), *MESH_SUFFIXES.values()))


def manifest_lock_name(manifest_name: str) -> str:
    return f".{manifest_name}.lock"


def _is_tr2m_manifest(path: Path) -> bool:
    from ..errors import InputError
    from .files import read_head

    try:
        head, _ = read_head(path, 1 << 16)
        record = json.loads(head.split(b"\n", 1)[0])
    except (OSError, ValueError, InputError):
        return False
    return isinstance(record, dict) and "input" in record and "status" in record


def holds_a_run(folder: str | Path, names: list[str] | None = None) -> bool:
    """Whether `folder` is (the top of) a tr2m output folder. `names`: its entries, if listed."""
    folder = Path(folder)
    if names is None:
        try:
            names = [entry.name for entry in folder.iterdir()]
        except OSError:
            return False
    if RUN_LOCK in names:
        return True
    return any(MANIFEST_PATTERN.match(name) and _is_tr2m_manifest(folder / name) for name in names)
