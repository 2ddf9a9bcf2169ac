"""The shape every dataset shares: an indexed list of files, read lazily into `DepthSample`s.

A dataset module subclasses `DepthDataset` and says four things: its layout (`_index`, which reads
split lists or scans folders into `Entry` records, no pixels), how its depth is decoded into metres
(`_read_depth`), its defaults (range, crop, input size: `protocol.PRESETS`) and, where the data
itself names it, its captions (`default_captions`). Pixels are read only in `__getitem__`, so a
dataset of 24,000 frames opens in the time it takes to read its split list.
"""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from ..errors import DatasetError, Tr2mError
from .base import DepthSample
from .captions import CaptionSource, NoCaptionsInFolder, open_captions
from .protocol import PRESETS, EvalProtocol

CAPTIONS_ENV = "TR2M_CAPTIONS"


@dataclass(frozen=True)
class Entry:
    """Where one sample's files are; everything a loader needs, nothing read yet."""

    key: str
    image: Path
    depth: Path
    focal_px: float | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleProblem:
    """A sample whose files cannot all be read, found before any pixel is: `problem` names them."""

    index: int
    key: str
    problem: str


# Samples looked at when a dataset opens: if none of them has all its files, the layout is wrong
# (one line saying what was expected); a few missing files are per-sample problems instead.
FIRST_SAMPLES_CHECKED = 8


class DepthDataset(Sequence):
    """A `Sequence[DepthSample]` over one split of one dataset, in a fixed, documented order."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # as the paper's tables name it
    kind: ClassVar[str] = "zero-shot"  # or "in-domain" (the paper trains on those)
    splits: ClassVar[tuple[str, ...]] = ("test",)
    folder: ClassVar[str] = ""  # conventional sub-folder under a data root
    caption_folder: ClassVar[str] = ""  # its folder in the paper's caption release (text_all/)
    layout: ClassVar[str] = ""  # one line: what the root must contain
    caption_order: str = "sorted image paths"  # the order lines files are paired in
    lines_caption_notice: str | None = None

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        *,
        captions: "str | Path | Mapping | None" = None,
        require_captions: bool = True,
        protocol: EvalProtocol | None = None,
    ) -> None:
        if split not in self.splits:
            if self.splits == ("test",):
                raise DatasetError(f"{self.name} is a zero-shot evaluation set: it has only a 'test' split, not '{split}'")
            raise DatasetError(f"{self.name}: unknown split '{split}' (expected {' or '.join(self.splits)})")
        self.root = Path(root).expanduser()
        self.split = split
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: no such folder (the {self.name} root should contain {self.layout})")
        self.notes: list[str] = []  # things the user should know about this copy (printed by eval)
        self.entries: list[Entry] = self._index()
        if not self.entries:
            raise DatasetError(f"{self.root}: no {self.name} {split} samples found; expected {self.layout}")
        head = self.entries[:FIRST_SAMPLES_CHECKED]
        if not any(all(path.is_file() for path in self.sample_files(entry).values()) for entry in head):
            first = head[0]
            path = next(path for path in self.sample_files(first).values() if not path.is_file())
            raise DatasetError(f"{path}: missing ({self.name} {split} sample '{first.key}'); expected {self.layout}")
        self.protocol = protocol or PRESETS[self.name]
        self.captions_source = self._captions(captions, require_captions)

    # -- what subclasses provide ---------------------------------------------------------------

    def _index(self) -> list[Entry]:
        raise NotImplementedError

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        """(depth in metres, valid mask) at the stored resolution; a dataset may add a third item,
        a dict of facts about the decoding (SUN RGB-D's encoding), kept in the sample's extras."""
        raise NotImplementedError

    def _read_image(self, entry: Entry) -> np.ndarray:
        from ..io.images import read_rgb

        try:
            return read_rgb(entry.image)
        except Tr2mError as exc:
            raise DatasetError(str(exc)) from None

    def sample_files(self, entry: Entry) -> dict[str, Path]:
        """The files one sample is read from, by what they hold (checked before any is read)."""
        return {"photo": entry.image, "depth": entry.depth}

    def differences_from_reference(self) -> list[str]:
        """How this copy is read differently from the authors' evaluation code (printed beside the
        results, so a number is never compared with the paper's without saying so)."""
        return []

    def default_captions(self) -> CaptionSource | None:
        """Captions the data itself implies (C3VD/SimCol sequence names); None elsewhere."""
        return None

    # -- the Sequence ---------------------------------------------------------------------------

    @property
    def domain(self) -> str | None:
        return self.protocol.domain

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> DepthSample:  # type: ignore[override]
        if isinstance(index, slice):
            return self.select(range(len(self))[index])  # type: ignore[return-value]
        entry = self.entries[index]
        image = self._read_image(entry)
        depth, valid, *details = self._read_depth(entry)
        if depth.shape != image.shape[:2]:
            raise DatasetError(
                f"{entry.depth}: depth of size {depth.shape[0]}x{depth.shape[1]} but its image "
                f"{entry.image} is {image.shape[0]}x{image.shape[1]}"
            )
        valid = valid & np.isfinite(depth) & (depth > 0)
        depth = np.where(valid, depth, 0).astype(np.float32)
        return DepthSample(
            image=image,
            depth=depth,
            valid=valid,
            captions=self.captions_source.captions_for(entry.key),
            key=entry.key,
            dataset=self.name,
            focal_px=self._focal(entry),
            extras={
                "image_path": str(entry.image), "depth_path": str(entry.depth), **entry.extras,
                **(details[0] if details else {}),
            },
        )

    def _focal(self, entry: Entry) -> float | None:
        return entry.focal_px

    def missing_files(self, indices=None) -> list[SampleProblem]:
        """Samples (all, or those at `indices`) whose photo, depth, mask or caption file is missing,
        empty or not a file: a `stat` per file, no pixel read, so it runs before any model loads."""
        problems = []
        for index in range(len(self)) if indices is None else indices:
            entry = self.entries[index]
            files = dict(self.sample_files(entry))
            for number, path in enumerate(self.captions_source.files_for(entry.key)):
                files["caption" if number == 0 else f"caption {number + 1}"] = path
            found = [text for role, path in files.items() if (text := _file_problem(role, path))]
            if found:
                problems.append(SampleProblem(index, entry.key, "; ".join(found)))
        return problems

    def keys(self) -> list[str]:
        return [entry.key for entry in self.entries]

    def select(self, indices) -> "DepthDataset":
        """A view on some samples (same root, protocol and captions), e.g. the first N."""
        view = copy.copy(self)
        view.entries = [self.entries[i] for i in indices]
        return view

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.split}: {len(self)} samples in {self.root}>"

    # -- captions -------------------------------------------------------------------------------

    def _captions(self, captions, require: bool) -> CaptionSource:
        derived = self.default_captions()
        if captions is not None:
            try:
                return open_captions(captions, self)
            except NoCaptionsInFolder:
                if derived is None:
                    raise
        if derived is not None:
            derived.check(self.keys())
            return derived
        env = os.environ.get(CAPTIONS_ENV)
        if env:
            return open_captions(env, self)
        beside = self.root / "captions"
        if beside.exists():
            return open_captions(beside, self)
        if require:
            raise DatasetError(
                f"{self.name}: no captions: pass captions= (--captions PATH: the paper's caption "
                f"folder text_all/, a per-image tree, a JSON mapping or a one-line-per-image file), "
                f"set {CAPTIONS_ENV}, or put them in {beside}"
            )
        return CaptionSource()


def _file_problem(role: str, path: Path) -> str | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return f"missing {role} file {path}"
    except OSError as exc:
        return f"cannot read {role} file {path} ({exc.strerror or exc})"
    if not stat.S_ISREG(status.st_mode):
        return f"{role} {path} is not a file"
    if status.st_size == 0:
        return f"empty {role} file {path}"
    return None
