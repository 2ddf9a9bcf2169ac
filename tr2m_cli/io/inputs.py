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
- Nothing tr2m wrote is read back (`own_files`): files named like a tr2m output, and sub-folders
  holding a tr2m run (its lock or manifest) other than `own_output`, are skipped.
- Photos that cannot be read are skipped and reported (`Found.skipped`), never dropped in
  silence: FIFOs, devices and sockets named like photos (reading a FIFO blocks forever), and
  formats this installation cannot decode (HEIC without pillow-heif).
- `@list.txt` holds one path per line (blank lines and `#` comments ignored): files or folders,
  relative to the list's own folder, else to the working directory.
- Symbolic links are followed, but no real folder is walked twice, so a link to an ancestor
  cannot loop; a photo reached twice (by two arguments or links) is listed once.
- `root` is the deepest folder containing every argument (a folder argument, or a file's parent),
  so one folder argument mirrors exactly its own tree, and `cam1/ cam2/` keep their names apart.
- `output_stem` is `relative` without its suffix, except where two photos would share it
  (`a/x.jpg` and `a/x.png`, or names differing only in case): those keep their suffix (`a/x.jpg`).
- Clips (when the caller asks for them, as `tr2m convert` does): video files and ROS bags by
  name (`sequences.kinds`), a ROS 2 bag folder (with `metadata.yaml`) as one recording, never
  walked into, and with `sequence=True` every folder that directly holds images, as one clip of
  numbered frames (its images are then frames, not photos). Clips whose reader is not installed
  are skipped with the extra to install. A clip's `output_stem` is the folder its outputs go to.
- Order is sorted by `relative` (then by path), identical on every machine.
- URLs (`s3://bucket/frames`, `gs://…`, `az://…`; see io.storage) are listed in one request per
  argument (a prefix walks everything under it unless `recursive=False`); keys, output stems and
  what is skipped follow the same rules, so outputs keep the layout they would have on a local
  disk. URLs and local paths cannot be mixed in one run.
- `select_shard(images, Shard(k, n))` keeps a stable 1/n of the list by a hash of `relative`, so
  n machines can split one folder with no coordination and no overlap.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Sequence

from ..errors import InputError
from ..sequences.kinds import clip_kind_of_name, is_ros2_bag_folder, missing_extra
from . import storage
from .files import read_capped, regular_file_problem
from .images import IMAGE_SUFFIXES, unsupported_reason
from .own_files import holds_a_run, is_output_name

LIST_FILE_LIMIT = 64 << 20  # an @list.txt of a million paths is ~60 MB


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
    # (bytes, modification time in ns) as an object-store listing gave them, so fingerprints need
    # no request per photo; None for local files (they are stat'ed).
    listed: tuple[int, int] | None = field(default=None, compare=False)
    kind: str = "photo"  # or a clip's kind: "video", "bag", "frames" (a folder of numbered frames)

    @property
    def is_clip(self) -> bool:
        return self.kind != "photo"

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
        digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
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
        data = read_capped(list_file, LIST_FILE_LIMIT, "the list")
        lines = data.decode("utf-8-sig", "surrogateescape").splitlines()
    except FileNotFoundError:
        raise InputError(f"@{list_file}: no such list file") from None
    except OSError as exc:
        raise InputError(f"@{list_file}: cannot read the list ({exc.strerror or exc})") from None
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


@dataclass(frozen=True)
class Skipped:
    """A file or folder found among the inputs and left out, and why (in words)."""

    path: Path
    reason: str


@dataclass
class Found:
    images: list[InputImage]  # photos
    skipped: list[Skipped]
    clips: list[InputImage] = field(default_factory=list)  # videos, bags, frame folders

    def describe_skipped(self, limit: int = 3) -> str:
        """'2 tr2m outputs, 1 FIFO (named pipe) (b.jpg)' — counts by reason, a few examples."""
        by_reason: dict[str, list[Skipped]] = {}
        for item in self.skipped:
            by_reason.setdefault(item.reason, []).append(item)
        parts = []
        for reason, items in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
            names = ", ".join(i.path.name for i in items[:limit]) + (", …" if len(items) > limit else "")
            parts.append(f"{len(items)} {reason} ({names})")
        return "; ".join(parts)


class _Walk:
    def __init__(self, recursive: bool, own_output: Path | None, clips: bool = False, sequence: bool = False) -> None:
        self.recursive = recursive
        self.own_output = own_output
        self.clips = clips
        self.sequence = sequence
        self.seen_dirs: set[tuple[int, int]] = set()
        self.skipped: list[Skipped] = []

    def photo(self, path: Path) -> bool:
        """Whether a file with an image suffix is to be read (else it is recorded as skipped)."""
        return self._readable(path, check_regular=True, reason=unsupported_reason(path))

    def clip(self, path: Path, kind: str) -> bool:
        """Whether a video, bag or frame folder is to be read (else it is recorded as skipped)."""
        return self._readable(path, check_regular=kind != "frames" and not is_ros2_bag_folder(path), reason=missing_extra(kind))

    def _readable(self, path: Path, *, check_regular: bool, reason: str | None) -> bool:
        """Skip (and record) tr2m's own outputs, what is not a regular file (when `check_regular`),
        and what cannot be read here (`reason`, e.g. a missing extra)."""
        if is_output_name(path.name):
            self.skipped.append(Skipped(path, "tr2m outputs"))
            return False
        if check_regular:
            problem = regular_file_problem(path)
            if problem is not None and problem not in ("no such file", "broken symbolic link"):
                self.skipped.append(Skipped(path, "not regular files (a FIFO, device or socket hangs or floods a reader)"))
                return False
        if reason is not None:
            self.skipped.append(Skipped(path, f"unreadable here: {reason}"))
            return False
        return True

    def folder(self, folder: Path, top: bool = True) -> Iterable[tuple[Path, str]]:
        """(path, kind) of the photos and clips in `folder`."""
        try:
            stat = folder.stat()
        except OSError:
            return
        identity = (stat.st_dev, stat.st_ino)
        if identity in self.seen_dirs:  # a link back to a folder already walked: no loop, no repeat
            return
        self.seen_dirs.add(identity)
        if self.clips and is_ros2_bag_folder(folder):  # one recording: its files are not inputs
            if self.clip(folder, "bag"):
                yield folder, "bag"
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
        if not top and not self._is_own_output(folder) and holds_a_run(folder, [e.name for e in entries]):
            self.skipped.append(Skipped(folder, "folders holding another tr2m run's outputs"))
            return
        frames = 0
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                continue
            if is_dir:
                if self.recursive:
                    yield from self.folder(Path(entry.path), top=False)
            elif is_image_name(entry.name):
                if self.photo(Path(entry.path)):
                    if self.sequence:
                        frames += 1
                    else:
                        yield Path(entry.path), "photo"
            elif self.clips and (kind := clip_kind_of_name(entry.name)) and self.clip(Path(entry.path), kind):
                yield Path(entry.path), kind
        if frames and self.clip(folder, "frames"):
            yield folder, "frames"

    def _is_own_output(self, folder: Path) -> bool:
        if self.own_output is None:
            return False
        try:
            return os.path.samefile(folder, self.own_output)
        except OSError:
            return False


def _assign_output_stems(relatives: Sequence[PurePosixPath], folders: Sequence[bool] | None = None) -> list[PurePosixPath]:
    """Suffix-less stems where unique (compared case-insensitively, for macOS and Windows
    disks), full names for photos that would otherwise share one. `folders[i]`: entry i is a
    folder (a clip of frames, a ROS 2 bag), whose name is its stem whatever dots it holds. A
    clip whose outputs folder would be a folder of photos' outputs too (`x.mp4` beside `x/`)
    keeps its suffix."""
    folders = list(folders) if folders is not None else [False] * len(relatives)
    stems = [r if folder else r.with_suffix("") for r, folder in zip(relatives, folders)]
    while True:
        groups: dict[str, list[int]] = {}
        for i, stem in enumerate(stems):
            groups.setdefault(stem.as_posix().casefold(), []).append(i)
        clashing = [i for members in groups.values() if len(members) > 1 for i in members if stems[i] != relatives[i]]
        if not clashing:
            return stems
        for i in clashing:
            stems[i] = relatives[i]


def _keep_clip_folders_apart(entries: Sequence[tuple[PurePosixPath, str]], stems: list[PurePosixPath]) -> list[PurePosixPath]:
    """A video or bag `x.mp4` whose outputs folder `x/` would also hold other inputs' outputs
    (photos under `x/`) keeps its suffix: `OUT/x.mp4/`."""
    parents = {str(parent).casefold() for stem in stems for parent in stem.parents}
    return [
        relative if kind in ("video", "bag") and stem != relative and stem.as_posix().casefold() in parents else stem
        for (relative, kind), stem in zip(entries, stems)
    ]


def collect_images(
    inputs: Sequence[str | Path],
    *,
    recursive: bool = True,
    exclude: Callable[[Path], bool] | None = None,
    own_output: str | Path | None = None,
) -> list[InputImage]:
    """Every photo named by `inputs` (files, folders, `@list.txt`), sorted, each once (what
    `find_photos` finds, without the list of what it skipped)."""
    return find_photos(inputs, recursive=recursive, exclude=exclude, own_output=own_output).images


def find_photos(
    inputs: Sequence[str | Path],
    *,
    recursive: bool = True,
    exclude: Callable[[Path], bool] | None = None,
    own_output: str | Path | None = None,
) -> Found:
    """Every photo named by `inputs` (files, folders, `@list.txt`), sorted, each once, and what
    was left out and why (videos and bags are not looked for: see `find_inputs`)."""
    return find_inputs(inputs, recursive=recursive, exclude=exclude, own_output=own_output)


def find_inputs(
    inputs: Sequence[str | Path],
    *,
    recursive: bool = True,
    exclude: Callable[[Path], bool] | None = None,
    own_output: str | Path | None = None,
    clips: bool = False,
    sequence: bool = False,
) -> Found:
    """Every photo (and with `clips`, every video, ROS bag and, with `sequence`, folder of
    numbered frames) named by `inputs` (files, folders, `@list.txt`), sorted, each once, and what
    was left out and why.

    `exclude(path)` drops files a caller knows are not inputs. `own_output`: the output folder of
    the run that asks, whose tr2m files are skipped by name rather than the folder as a whole.
    Raises InputError for a missing input or an unreadable list or folder.
    """
    if not inputs:
        raise InputError("no inputs given: name photos, folders or @list.txt files")
    if any(storage.is_url(item) for item in inputs):
        places = [storage.location(item) if storage.is_url(item) else item for item in inputs]
        if all(isinstance(place, storage.Url) for place in places):
            return _find_in_storage(places, recursive, exclude, own_output)
        if any(isinstance(place, storage.Url) for place in places):
            raise InputError("inputs mix local paths and storage URLs: give one kind per run")
        inputs = places  # file:// URLs are local paths
    found: list[tuple[Path, Path, str]] = []  # (file or clip folder, the folder its outputs mirror from, kind)
    local_output = own_output is not None and not storage.is_url(own_output)  # an object store holds no photos of ours here
    walk = _Walk(recursive, Path(own_output) if local_output else None, clips=clips or sequence, sequence=sequence)
    for argument in _expand_arguments(inputs):
        argument = _absolute(argument)
        if argument.is_dir():
            # A folder that is itself a clip mirrors from its parent: `frames/` → OUT/frames/.
            found.extend((path, argument.parent if path == argument else argument, kind) for path, kind in walk.folder(argument))
        elif is_image_name(argument.name):
            if walk.photo(argument):
                found.append((argument, argument.parent, "photo"))
        elif walk.clips and (kind := clip_kind_of_name(argument.name)) and walk.clip(argument, kind):
            found.append((argument, argument.parent, kind))
    unique: dict[Path, tuple[Path, Path, str]] = {}
    for path, input_root, kind in found:
        try:
            identity = path.resolve()
        except OSError:
            identity = path
        unique.setdefault(identity, (_absolute(path), input_root, kind))
    triples = list(unique.values())
    if exclude is not None:
        triples = [t for t in triples if not exclude(t[0])]
    if not triples:
        return Found([], walk.skipped)
    root = Path(os.path.commonpath([str(input_root) for _, input_root, _ in triples]))
    entries = sorted(
        ((PurePosixPath(Path(os.path.relpath(path, root)).as_posix()), path, input_root, kind) for path, input_root, kind in triples),
        key=lambda item: (item[0].as_posix(), str(item[1])),
    )
    folders = [e[3] == "frames" or (e[3] == "bag" and e[1].is_dir()) for e in entries]  # a ROS 2 bag is a folder
    stems = _assign_output_stems([e[0] for e in entries], folders)
    stems = _keep_clip_folders_apart([(e[0], e[3]) for e in entries], stems)
    items = [
        InputImage(path=path, root=root, relative=relative, input_root=input_root, output_stem=stem, kind=kind)
        for (relative, path, input_root, kind), stem in zip(entries, stems)
    ]
    return Found([i for i in items if not i.is_clip], walk.skipped, [i for i in items if i.is_clip])


def _find_in_storage(urls: list, recursive: bool, exclude, own_output) -> Found:
    """Photos under object-store prefixes (or named objects), one listing per argument, skipping
    what the local walker skips: hidden names, tr2m's outputs, prefixes holding another tr2m run,
    formats this installation cannot read."""
    if len({url.protocol for url in urls}) > 1:
        raise InputError(f"inputs on different stores ({', '.join(sorted({u.protocol for u in urls}))}): give one per run")
    own = storage.location(own_output) if own_output is not None and storage.is_url(own_output) else None
    found: dict[str, tuple[storage.Url, storage.Url]] = {}  # URL → (object, its input root)
    sizes: dict[str, tuple[int, int]] = {}
    skipped: list[Skipped] = []
    for url in urls:
        everything = storage.list_files(url, recursive=recursive, hidden=True)  # the one listing
        listing = [info for info in everything if not storage.is_hidden(info.key)]
        if not listing:
            if is_image_name(url.name) and storage.is_file(url):
                found.setdefault(str(url), (url, url.parent))
                continue
            raise InputError(f"{storage.describe(url)}: no such object or prefix")
        runs = {folder for info in everything
                if (folder := _run_folder(info.key)) and (own is None or storage.join(url, folder) != own)}  # fmt: skip
        for info in listing:
            name = PurePosixPath(info.key).name
            if not is_image_name(name):
                continue
            item = storage.join(url, info.key)
            parents = [str(p) for p in PurePosixPath(info.key).parents if str(p) != "."]
            if any(parent in runs for parent in parents):
                skipped.append(Skipped(Path(info.key), "folders holding another tr2m run's outputs"))
            elif is_output_name(name):
                skipped.append(Skipped(Path(info.key), "tr2m outputs"))
            elif (reason := unsupported_reason(name)) is not None:
                skipped.append(Skipped(Path(info.key), f"unreadable here: {reason}"))
            else:
                found.setdefault(str(item), (item, url))
                sizes[str(item)] = (info.size, int((info.mtime or 0) * 1e9))
    pairs = [pair for pair in found.values() if exclude is None or not exclude(pair[0])]
    if not pairs:
        return Found([], skipped)
    common = posixpath.commonpath([input_root.path for _, input_root in pairs])
    root = storage.Url(urls[0].protocol, common)
    entries = sorted(((path.relative_to(root), path, input_root) for path, input_root in pairs), key=lambda e: e[0].as_posix())
    stems = _assign_output_stems([relative for relative, _, _ in entries])
    images = [
        InputImage(path=path, root=root, relative=relative, input_root=input_root, output_stem=stem, listed=sizes.get(str(path)))
        for (relative, path, input_root), stem in zip(entries, stems)
    ]
    return Found(images, skipped)


def _run_folder(key: str) -> str | None:
    """The folder a key shows to hold a tr2m run (its manifest, run lock or manifest parts), else
    None. By name: reading each candidate manifest's first record, as on disk, would cost a
    request per folder."""
    from .manifest_parts import PARTS_FOLDER
    from .own_files import MANIFEST_PATTERN, RUN_LOCK

    parts = key.split("/")
    if PARTS_FOLDER in parts[:-1]:
        return "/".join(parts[: parts.index(PARTS_FOLDER)]) or None
    if MANIFEST_PATTERN.match(parts[-1]) or parts[-1] == RUN_LOCK:
        return "/".join(parts[:-1]) or None
    return None


def select_shard(images: Sequence[InputImage], shard: Shard | None) -> list[InputImage]:
    """The images of one shard, in the list's order; all of them when `shard` is None."""
    if shard is None:
        return list(images)
    return [image for image in images if shard.holds(image.key)]
