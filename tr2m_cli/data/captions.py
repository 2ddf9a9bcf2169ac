"""Where a dataset's captions come from, and how each image finds its own.

The paper's captions come in three shapes (spec §5):

- a **tree** mirroring the dataset, one `.txt` per image with several captions, one per line
  (15 in the release, but nothing here assumes a count); evaluation uses line 0, training any line;
- a **mapping** file: JSON (image key → caption or list of captions), JSON Lines or CSV/TSV of
  image and caption (what `tr2m caption` writes), or lines of `key<TAB>caption`;
- a **lines** file, one caption per image in the loader's order (the release's zero-shot sets). That
  order is fragile, so it is made explicit: each dataset defines its order (its split list's, or
  sorted paths), the line count must equal the image count, and a mismatch is an error.

Files are read by `tr2m_cli.io.captions` (`read_caption_file`, `read_caption_lines`), the one
caption reader that `convert` and `caption` use too.

Keys are image paths relative to the dataset root without their extension (`DepthSample.key`);
mapping keys may also carry the extension, or be bare file names when those are unique.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from ..errors import DatasetError, InputError
from .files import relative_key

if TYPE_CHECKING:
    from .dataset import DepthDataset


class NoCaptionsInFolder(DatasetError):
    """A caption folder holds nothing for this dataset (datasets that derive their captions, C3VD
    and SimCol, then keep their own)."""


class CaptionSource:
    """Gives each sample key its list of captions."""

    description = "no captions"
    notice: str | None = None  # something the user should read before trusting the pairing
    positional = False  # paired by line order rather than by key

    def captions_for(self, key: str) -> list[str]:
        return []

    def check(self, keys: Sequence[str]) -> None:
        """Fail early (before any model runs) when the source clearly does not fit the dataset."""

    def files_for(self, key: str) -> list[Path]:
        """Files that must exist for `key`'s captions (checked with the sample's other files)."""
        return []


class CaptionTree(CaptionSource):
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.description = f"one file per image under {self.folder}"

    def path_for(self, key: str) -> Path:
        return self.folder / f"{key}.txt"

    def captions_for(self, key: str) -> list[str]:
        from ..io.captions import read_caption_lines

        path = self.path_for(key)
        try:
            captions = read_caption_lines(path)
        except InputError as exc:
            raise DatasetError(str(exc)) from None
        if captions is None:
            raise DatasetError(f"{path}: no caption file for image '{key}' (in the caption tree {self.folder})")
        if not captions:
            raise DatasetError(f"{path}: caption file is empty")
        return captions

    def files_for(self, key: str) -> list[Path]:
        return [self.path_for(key)]


class CaptionMapping(CaptionSource):
    """Key → captions, looked up by key, key with extension, or a unique bare file name."""

    def __init__(self, mapping: Mapping[str, Sequence[str]], description: str) -> None:
        self.mapping = {relative_key(k): list(v) for k, v in mapping.items()}
        self.description = description
        self._by_name: dict[str, str | None] = {}
        for key in self.mapping:
            name = key.rsplit("/", 1)[-1]
            self._by_name[name] = None if name in self._by_name else key  # None marks a clash

    def _resolve(self, key: str) -> str | None:
        if key in self.mapping:
            return key
        return self._by_name.get(key.rsplit("/", 1)[-1])

    def captions_for(self, key: str) -> list[str]:
        found = self._resolve(key)
        if found is None:
            raise DatasetError(f"{self.description}: no caption for image '{key}'")
        return self.mapping[found]

    def check(self, keys: Sequence[str]) -> None:
        missing = [key for key in keys if self._resolve(key) is None]
        if missing:
            raise DatasetError(
                f"{self.description}: no caption for {len(missing)} of {len(keys)} images "
                f"(first: '{missing[0]}'); keys are image paths relative to the dataset root"
            )


def _as_caption_list(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise DatasetError(f"{where}: each value must be a caption or a non-empty list of captions")
    return [v.strip() for v in value]


def read_caption_source(path: Path, keys: Sequence[str], order: str) -> CaptionMapping:
    """A caption file for a dataset whose images are `keys`: a mapping file read by key, or a
    one-caption-per-line file paired with `keys` (the dataset's own, documented order)."""
    from ..io.captions import read_caption_file

    try:
        contents = read_caption_file(path, lines_allowed=True)
    except InputError as exc:
        raise DatasetError(str(exc)) from None
    if contents.lines is None:
        return CaptionMapping(contents.by_key, str(path))
    lines = contents.lines
    if len(lines) != len(keys):
        raise DatasetError(
            f"{path}: {len(lines)} captions for {len(keys)} images; a one-caption-per-line file must "
            f"list every image in {order}"
        )
    mapping = CaptionMapping({key: [line] for key, line in zip(keys, lines)}, str(path))
    mapping.description = f"{path} (line i = image i in {order})"
    mapping.positional = True
    return mapping


class DerivedCaptions(CaptionSource):
    """Captions computed from the key (C3VD and SimCol: from the sequence name)."""

    def __init__(self, caption_for_key: Callable[[str], str], description: str) -> None:
        self.caption_for_key = caption_for_key
        self.description = description

    def captions_for(self, key: str) -> list[str]:
        return [self.caption_for_key(key)]

    def check(self, keys: Sequence[str]) -> None:
        for key in keys[:1]:
            self.caption_for_key(key)


def _unique(paths: list[Path]) -> list[Path]:
    seen, out = set(), []
    for path in paths:
        if path not in seen:
            seen.add(path)
            out.append(path)
    return out


def open_captions(spec: "str | Path | Mapping", dataset: "DepthDataset") -> CaptionSource:
    """A caption source for `dataset` from a folder (a per-image tree, or the root of the paper's
    caption release `text_all/` holding one folder per dataset), a JSON mapping, a lines file, or
    an in-memory mapping."""
    keys = dataset.keys()
    if isinstance(spec, Mapping):
        source: CaptionSource = CaptionMapping(
            {str(k): _as_caption_list(v, f"captions['{k}']") for k, v in spec.items()}, "caption mapping"
        )
        source.check(keys)
        return source
    path = Path(spec).expanduser()
    if path.is_file():
        source = _caption_file(path, dataset, keys)
    elif path.is_dir():
        source = _caption_folder(path, dataset, keys)
    else:
        raise DatasetError(f"{path}: no such caption file or folder")
    source.check(keys)
    return source


def _caption_file(path: Path, dataset: "DepthDataset", keys: Sequence[str]) -> CaptionSource:
    source = read_caption_source(path, keys, dataset.caption_order)
    if source.positional:
        source.notice = dataset.lines_caption_notice
    return source


def _caption_folder(folder: Path, dataset: "DepthDataset", keys: Sequence[str]) -> CaptionSource:
    names = _unique([Path(dataset.caption_folder), Path(dataset.name)])
    split = dataset.split
    folders = _unique([*(folder / n / split for n in names), *(folder / n for n in names), folder / split, folder])
    first = keys[0]
    for candidate in folders:
        if (candidate / f"{first}.txt").is_file():
            return CaptionTree(candidate)
    file_names = [
        *(f"{n}.json" for n in names),
        "captions.json",
        *(f"{n}.jsonl" for n in names),
        "captions.jsonl",
        *(f"{n}_all.txt" for n in names),
        *(f"{n}.txt" for n in names),
        "captions.txt",
    ]
    for candidate in folders:
        for file_name in file_names:
            if (candidate / file_name).is_file():
                return _caption_file(candidate / file_name, dataset, keys)
    # A tree that lacks the first image's file is still a tree: the images without a caption file
    # are reported one by one (before any model runs), not as "no captions here".
    for key in keys[1:]:
        for candidate in folders:
            if (candidate / f"{key}.txt").is_file():
                return CaptionTree(candidate)
    expected = folder / dataset.caption_folder / split / f"{first}.txt"
    raise NoCaptionsInFolder(
        f"{folder}: no {dataset.name} captions: expected a per-image tree such as {expected}, "
        f"or {dataset.name}.json / {dataset.caption_folder}_all.txt in {folder}"
    )
