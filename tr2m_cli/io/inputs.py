"""Finding the photos a command should work on, the same way for every command.

`tr2m convert` and `tr2m caption` take any mix of files, folders and `@list.txt` files. This
module turns them into a sorted list of `InputImage`s, each knowing the folder its outputs mirror
from (`root`) and its path under it (`relative`), so that per-image outputs land in a mirrored
tree: never flattened, never colliding.

Rules (documented for users in the README):
- Folders are walked recursively (unless `recursive=False`); a file is an image when its suffix is
  one of `IMAGE_SUFFIXES`, in any case. Other files, and hidden files and folders (names starting
  with "."; this skips macOS `._x.jpg` resource forks and our own temporaries), are ignored.
  A file named explicitly is ignored too when its suffix is not an image's, so `photos/*` works.
- `@list.txt` holds one path per line (blank lines and `#` comments ignored): files or folders,
  relative to the list's own folder, else to the working directory.
- Symbolic links are followed, but no real folder is walked twice, so a link to an ancestor
  cannot loop; a photo reached twice (by two arguments or links) is listed once.
- `root` is the deepest folder containing every argument (a folder argument, or a file's parent),
  so one folder argument mirrors exactly its own tree, and `cam1/ cam2/` keep their names apart.
- `output_stem` is `relative` without its suffix, except where two photos would share it
  (`a/x.jpg` and `a/x.png`, or names differing only in case): those keep their suffix (`a/x.jpg`).
- Order is sorted by `relative` (then by path), identical on every machine.
- URLs (`s3://bucket/frames`, `gs://…`, `az://…`; see io.storage) are listed in one request per
  argument (a prefix walks everything under it unless `recursive=False`); their keys and output
  stems follow the same rules, so outputs keep the layout they would have on a local disk. URLs
  and local paths cannot be mixed in one run.
- `select_shard(images, Shard(k, n))` keeps a stable 1/n of the list by a hash of `relative`, so
  n machines can split one folder with no coordination and no overlap.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Sequence

from ..errors import InputError
from . import storage
from .images import IMAGE_SUFFIXES


@dataclass(frozen=True)
class InputImage:
    """One photo found in the inputs.

    `path`: the file (absolute, symbolic links kept as found). `root`: the folder outputs mirror
    from; `relative`: `path` under `root` (POSIX form). `input_root`: the folder argument it was
    found under (or a file argument's parent): captions may be keyed relative to it.
    `output_stem`: where per-image outputs go under an output folder, unique in the run.
    """

    path: Path | storage.Url
    root: Path | storage.Url
    relative: PurePosixPath
    input_root: Path | storage.Url
    output_stem: PurePosixPath

    @property
    def key(self) -> str:
        """The photo's name in manifests, captions files and messages: its relative path."""
        return self.relative.as_posix()

    @property
    def relative_to_input(self) -> PurePosixPath:
        if isinstance(self.path, storage.Url):
            return self.path.relative_to(self.input_root)
        return PurePosixPath(Path(os.path.relpath(self.path, self.input_root)).as_posix())


@dataclass(frozen=True)
class Shard:
    """Part `index` (1-based) of `count` equal parts of an input list."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise InputError(f"shard {self.index}/{self.count}: expected K/N with 1 ≤ K ≤ N")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """'2/8' → Shard(2, 8)."""
        parts = str(text).strip().split("/")
        try:
            index, count = (int(p) for p in parts)
        except ValueError:
            raise InputError(f"shard '{text}': expected K/N, e.g. 2/8") from None
        return cls(index, count)

    def holds(self, key: str) -> bool:
        # A hash of the relative path, not the position in the list: a machine that sees a few
        # more or fewer files still agrees with the others about every file they share.
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def _absolute(path: Path) -> Path:
    """Absolute and normalised (".." removed) without resolving symbolic links."""
    return Path(os.path.abspath(path))


def _read_list(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise InputError(f"@{list_file}: no such list file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"@{list_file}: cannot read the list ({exc})") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            beside = list_file.parent / candidate
            candidate = beside if beside.exists() or not candidate.exists() else candidate
        if not candidate.exists():
            raise InputError(f"@{list_file} line {number}: {text}: no such file or folder")
        entries.append(candidate)
    return entries


def _expand_arguments(inputs: Iterable[str | Path]) -> list[Path]:
    """Arguments with `@list.txt` entries replaced by the paths they hold."""
    expanded = []
    for item in inputs:
        text = str(item)
        if text.startswith("@") and not Path(text).exists():
            expanded.extend(_read_list(Path(text[1:]).expanduser()))
            continue
        path = Path(text).expanduser()
        if not path.exists():
            kind = "broken symbolic link" if path.is_symlink() else "no such file or folder"
            raise InputError(f"{text}: {kind}")
        expanded.append(path)
    return expanded


def _walk(folder: Path, recursive: bool, seen_dirs: set[tuple[int, int]]) -> Iterable[Path]:
    try:
        stat = folder.stat()
    except OSError:
        return
    identity = (stat.st_dev, stat.st_ino)
    if identity in seen_dirs:  # a link back to a folder already walked: no loop, no repeat
        return
    seen_dirs.add(identity)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows links
        except OSError:
            continue
        if is_dir:
            if recursive:
                yield from _walk(Path(entry.path), recursive, seen_dirs)
        elif is_image_name(entry.name):
            yield Path(entry.path)


def _assign_output_stems(relatives: Sequence[PurePosixPath]) -> list[PurePosixPath]:
    """Suffix-less stems where unique (compared case-insensitively, for macOS and Windows
    disks), full names for photos that would otherwise share one."""
    stems = [r.with_suffix("") for r in relatives]
    while True:
        groups: dict[str, list[int]] = {}
        for i, stem in enumerate(stems):
            groups.setdefault(stem.as_posix().casefold(), []).append(i)
        clashing = [i for members in groups.values() if len(members) > 1 for i in members if stems[i] != relatives[i]]
        if not clashing:
            return stems
        for i in clashing:
            stems[i] = relatives[i]


def collect_images(
    inputs: Sequence[str | Path],
    *,
    recursive: bool = True,
    exclude: Callable[[Path], bool] | None = None,
) -> list[InputImage]:
    """Every photo named by `inputs` (files, folders, `@list.txt`), sorted, each once.

    `exclude(path)` drops files a caller knows are not inputs (e.g. its own outputs). Raises
    InputError for a missing input or an unreadable list or folder.
    """
    if not inputs:
        raise InputError("no inputs given: name photos, folders or @list.txt files")
    urls = [item for item in inputs if storage.is_url(item)]
    if urls:
        if len(urls) != len(inputs) or any(isinstance(storage.location(u), Path) for u in urls):
            if all(isinstance(storage.location(item), Path) for item in inputs):  # file:// only
                return collect_images([storage.location(item) for item in inputs], recursive=recursive, exclude=exclude)
            raise InputError("inputs mix local paths and storage URLs: give one kind per run")
        return _collect_urls([storage.location(u) for u in urls], recursive, exclude)
    found: list[tuple[Path, Path]] = []  # (file, the folder argument it came from)
    seen_dirs: set[tuple[int, int]] = set()
    for argument in _expand_arguments(inputs):
        argument = _absolute(argument)
        if argument.is_dir():
            found.extend((path, argument) for path in _walk(argument, recursive, seen_dirs))
        elif is_image_name(argument.name):
            found.append((argument, argument.parent))
    unique: dict[Path, tuple[Path, Path]] = {}
    for path, input_root in found:
        try:
            identity = path.resolve()
        except OSError:
            identity = path
        unique.setdefault(identity, (_absolute(path), input_root))
    if not unique:
        return []
    pairs = list(unique.values())
    if exclude is not None:
        pairs = [(path, input_root) for path, input_root in pairs if not exclude(path)]
        if not pairs:
            return []
    root = Path(os.path.commonpath([str(input_root) for _, input_root in pairs]))
    entries = sorted(
        ((PurePosixPath(Path(os.path.relpath(path, root)).as_posix()), path, input_root) for path, input_root in pairs),
        key=lambda item: (item[0].as_posix(), str(item[1])),
    )
    stems = _assign_output_stems([relative for relative, _, _ in entries])
    return [
        InputImage(path=path, root=root, relative=relative, input_root=input_root, output_stem=stem)
        for (relative, path, input_root), stem in zip(entries, stems)
    ]


def _collect_urls(urls: list[storage.Url], recursive: bool, exclude) -> list[InputImage]:
    """Photos under object-store prefixes (or named objects), one listing per argument."""
    if len({url.protocol for url in urls}) > 1:
        raise InputError(f"inputs on different stores ({', '.join(sorted({u.protocol for u in urls}))}): give one per run")
    found: dict[str, tuple[storage.Url, storage.Url]] = {}  # path → (object, its input root)
    for url in urls:
        listing = storage.list_files(url, recursive=recursive)
        if listing:
            for info in listing:
                if is_image_name(PurePosixPath(info.key).name):
                    item = storage.join(url, info.key)
                    found.setdefault(str(item), (item, url))
        elif is_image_name(url.name) and storage.is_file(url):
            found.setdefault(str(url), (url, url.parent))
        else:
            raise InputError(f"{storage.describe(url)}: no such object or prefix")
    pairs = [pair for pair in found.values() if exclude is None or not exclude(pair[0])]
    if not pairs:
        return []
    common = posixpath.commonpath([root.path for _, root in pairs]) if len(urls) > 1 else None
    root = storage.Url(urls[0].protocol, common) if common is not None else pairs[0][1]
    entries = sorted(((path.relative_to(root), path, input_root) for path, input_root in pairs), key=lambda e: e[0].as_posix())
    stems = _assign_output_stems([relative for relative, _, _ in entries])
    return [
        InputImage(path=path, root=root, relative=relative, input_root=input_root, output_stem=stem)
        for (relative, path, input_root), stem in zip(entries, stems)
    ]


def select_shard(images: Sequence[InputImage], shard: Shard | None) -> list[InputImage]:
    """The images of one shard, in the list's order; all of them when `shard` is None."""
    if shard is None:
        return list(images)
    return [image for image in images if shard.holds(image.key)]
