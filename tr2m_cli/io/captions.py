"""Where each photo's caption comes from, and saying which source was used.

TR2M needs one short description per photo (the CLIP text embedding conditions the scale and shift
maps). Sources, per photo, first match wins:

1. a caption file (`--caption-file`): JSON mapping key → caption (or a list: the first is used),
   a JSON list / JSON Lines of {"image": key, "caption": text} objects, or CSV/TSV with `image`
   and `caption` columns. A key is the photo's path relative to the input folder (with or
   without its suffix), its file name, or its stem. A key matching two photos, or two keys giving
   one photo different captions, is an error naming them; so is any malformed file, before work.
2. `--caption-root DIR`: `DIR/<relative path>.txt`, a tree mirroring the inputs (the layout of the
   paper's caption trees); then a sidecar beside the photo, `<stem>.txt`. Both read the first
   non-empty line (the paper's trees hold several captions per file; line 0 is the evaluation one).
3. a fallback that produces captions for photos that still have none (e.g. a captioning model,
   recorded as "generated").
4. `--caption TEXT` for every photo that has none.
5. `--domain indoor|outdoor|surgical`: a generic caption of that domain (the paper, Table 10, shows
   a wrong caption of the right domain costs little).

A photo with none of these has no caption: callers report "no caption for X"; there is no silent
default. `sidecar_path` and `caption_root_path` say where captions for a photo are read, so tools
that write captions put them exactly there.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import InputError
from . import storage
from .files import read_head, read_text_file
from .inputs import InputImage
from .photo_keys import IMAGE_FIELDS, find_key, lookup_keys, match_keys, normalise_key

# Caption text files hold a line or a few (the paper's trees: several captions per photo); more
# than this is not a caption file (a log, a link to /dev/zero) and is not read.
CAPTION_TEXT_LIMIT = 64 << 10
CAPTION_FILE_LIMIT = 512 << 20  # --caption-file: a million photos' captions is ~200 MB

DOMAIN_CAPTIONS: Mapping[str, str] = {
    "indoor": "An indoor scene of a room with furniture and everyday objects.",
    "outdoor": "An outdoor scene with buildings, a street, trees and the sky.",
    # The wording of the paper's colonoscopy captions (C3VD): "The image shows a medical scene of …".
    "surgical": "The image shows a medical scene of the colon with its tissue texture.",
}
DOMAINS = tuple(DOMAIN_CAPTIONS)

_SURROGATES = re.compile("[\ud800-\udfff]")
CAPTION_FIELDS = ("caption", "captions", "text")


@dataclass(frozen=True)
class Caption:
    """The caption used for one photo and where it came from.

    `source`: caption-file, caption-root, sidecar, generated, option (--caption) or domain.
    `origin`: which file and key, which text file, which model, or which domain.
    """

    text: str
    source: str
    origin: str


@dataclass(frozen=True)
class CaptionRules:
    """Which caption sources a run uses (see the module docstring for the order)."""

    caption_file: Path | None = None
    caption_root: Path | None = None
    sidecars: bool = True
    caption: str | None = None
    domain: str | None = None

    def __post_init__(self) -> None:
        if self.domain is not None and self.domain not in DOMAIN_CAPTIONS:
            raise InputError(f"domain '{self.domain}': expected one of {', '.join(DOMAINS)}")
        if self.caption is not None and not clean_caption(self.caption):
            raise InputError("--caption is empty: give a sentence describing the photos")


@dataclass(frozen=True)
class CaptionFallback:
    """Captions for photos that have none: `generate(images)` returns one caption (or None)
    per image, in order, so a model can caption them in batches. `name` is recorded as the
    caption's origin ("generated: <name>")."""

    name: str
    generate: Callable[[Sequence[InputImage]], Sequence[str | None]]


def _valid_text(text: str) -> str:
    """Text that encodes as UTF-8: bytes that were not UTF-8 (kept by Python as lone surrogates,
    from command-line arguments or JSON escapes) become U+FFFD, as any decoder shows them."""
    return _SURROGATES.sub("\ufffd", text)


def clean_caption(text: Any) -> str:
    """One line, single spaces, valid Unicode."""
    return " ".join(_valid_text(str(text)).split())


def sidecar_path(image: InputImage) -> Path:
    """The text file beside a photo that holds its caption: `<stem>.txt`, or `<name>.txt` for a
    photo whose stem another photo shares (x.jpg and x.png)."""
    return image.path.parent / f"{image.output_stem.name}.txt"


def caption_root_path(image: InputImage, caption_root: str | Path | storage.Url) -> Path | storage.Url:
    """The text file for a photo in a caption tree mirroring the inputs (a folder or a prefix)."""
    root = storage.location(caption_root) if storage.is_url(caption_root) else Path(caption_root)
    return storage.join(root, f"{image.output_stem.as_posix()}.txt")


def _read_object_head(url: storage.Url, limit: int) -> tuple[bytes, bool]:
    """(up to `limit` bytes, whether there is more) of an object; FileNotFoundError when absent."""
    if not storage.is_file(url):
        raise FileNotFoundError(str(url))
    info = storage.stat(url)
    if info.size > limit:
        return b"", True
    return storage.read_bytes(url), False


def read_caption_lines(path: Path) -> list[str] | None:
    """Every non-empty line of a caption text file (a sidecar, or a file of the paper's caption
    trees, which hold several captions per image), cleaned; None when the file does not exist.
    UTF-8 (with or without a BOM), else Latin-1. Only regular files are read, of at most
    CAPTION_TEXT_LIMIT bytes (a FIFO or a link to /dev/zero is an InputError, not a hang)."""
    try:
        data, more = _read_object_head(path, CAPTION_TEXT_LIMIT) if isinstance(path, storage.Url) else read_head(path, CAPTION_TEXT_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the caption ({exc.strerror or exc})") from None
    if more:
        raise InputError(f"{path}: larger than {CAPTION_TEXT_LIMIT >> 10} KiB: not a caption file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return [line for line in map(clean_caption, text.splitlines()) if line]


def read_first_line(path: Path) -> str | None:
    """The first non-empty line of a caption text file, or None when it has none."""
    lines = read_caption_lines(path)
    return lines[0] if lines else None


def _text_file_candidates(image: InputImage, folder_path: Path) -> list[Path]:
    """`<name>.txt` if the output stem keeps the suffix, then `<stem>.txt`."""
    shared = folder_path.with_name(f"{image.path.stem}.txt")
    return [folder_path] if folder_path == shared else [folder_path, shared]


# -- caption files ----------------------------------------------------------------------------


def _caption_list(value: Any, where: str) -> list[str]:
    """A caption or a list of captions → the cleaned list (readers that need one take the first)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise InputError(f"{where}: empty list of captions")
    captions = []
    for item in values:
        if not isinstance(item, str):
            raise InputError(f"{where}: caption must be text or a list of texts, not {type(item).__name__}")
        text = clean_caption(item)
        if not text:
            raise InputError(f"{where}: empty caption")
        captions.append(text)
    return captions


class _Table:
    """key → captions, refusing a key given twice with different captions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, list[str]] = {}

    def add(self, key: Any, value: Any, where: str) -> None:
        if not isinstance(key, str) or not normalise_key(key):
            raise InputError(f"{where}: the image key must be a non-empty text")
        captions = _caption_list(value, f"{where} ({key!r})")
        key = normalise_key(key)
        previous = self.entries.get(key)
        if previous is not None and previous != captions:
            raise InputError(f"{self.path}: key {key!r} is given twice with different captions")
        self.entries[key] = captions


def _record_fields(record: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected an object with \"image\" and \"caption\"")
    image = next((record[f] for f in IMAGE_FIELDS if f in record), None)
    caption = next((record[f] for f in CAPTION_FIELDS if f in record), None)
    if image is None or caption is None:
        missing = [name for name, value in (("image", image), ("caption", caption)) if value is None]
        raise InputError(f"{where}: missing {' and '.join(repr(m) for m in missing)}")
    return image, caption


def _parse_json(table: _Table, text: str) -> None:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result and result[key] != value:
                raise InputError(f"{table.path}: key {key!r} is given twice with different captions")
            result[key] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            _parse_json_lines(table, text)  # JSON Lines saved under a .json name
            return
        raise InputError(f"{table.path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if isinstance(data, dict):
        for key, value in data.items():
            table.add(key, value, str(table.path))
    elif isinstance(data, list):
        for number, record in enumerate(data):
            table.add(*_record_fields(record, f"{table.path} item {number}"), f"{table.path} item {number}")
    else:
        raise InputError(f"{table.path}: expected a JSON object mapping image → caption")


def _parse_json_lines(table: _Table, text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{table.path} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
        table.add(*_record_fields(record, where), where)


def _parse_csv(table: _Table, text: str, delimiter: str) -> None:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    image_column = next((f for f in IMAGE_FIELDS if f in header), None)
    caption_column = next((f for f in CAPTION_FIELDS if f in header), None)
    if image_column is None or caption_column is None:
        raise InputError(
            f"{table.path}: expected a header with 'image' and 'caption' columns, found: "
            f"{', '.join(repr(h) for h in header) or 'nothing'}"
        )
    reader.fieldnames = header
    try:
        for row in reader:
            where = f"{table.path} line {reader.line_num}"
            if all(not (value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            table.add(row.get(image_column) or "", row.get(caption_column) or "", where)
    except csv.Error as exc:
        raise InputError(f"{table.path} line {reader.line_num}: malformed CSV ({exc})") from None


@dataclass(frozen=True)
class CaptionFile:
    """What a caption file holds: captions by image key (`by_key`, every caption of a key, in
    order), or, for a plain text file of one caption per line, those captions in file order
    (`lines`), which only a caller that knows the order of its images can pair."""

    path: Path
    by_key: Mapping[str, list[str]]
    lines: list[str] | None = None


def _looks_like_header(line: str) -> str | None:
    """The delimiter of a CSV/TSV header naming an image and a caption column, else None."""
    for delimiter in ("\t", ","):
        fields = [field.strip().strip('"').lower() for field in line.split(delimiter)]
        if any(f in fields for f in IMAGE_FIELDS) and any(f in fields for f in CAPTION_FIELDS):
            return delimiter
    return None


def _parse_lines(path: Path, text: str) -> list[str]:
    lines = [clean_caption(line) for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if "" in lines:  # dropping it would shift every later caption onto the wrong image
        raise InputError(f"{path}: line {lines.index('') + 1} is empty; every image needs its caption on its own line")
    return lines


def read_caption_file(path: str | Path, *, lines_allowed: bool = False) -> CaptionFile:
    """Read any caption file, the one reader behind convert, caption, eval and train.

    By suffix, then content: `.jsonl`/`.ndjson` JSON Lines of {"image", "caption"} objects;
    `.json` (or text starting with `{`/`[`) a JSON object image → caption or list of captions, or
    a list of objects; `.csv`/`.tsv` (or a first line naming `image` and `caption` columns) CSV or
    TSV; lines that all hold a tab, `image<TAB>caption`. Anything else is one caption per line,
    returned in `lines` when `lines_allowed` (the caller pairs them in its own documented order),
    an error otherwise. Any problem is one InputError naming the file and the place."""
    path = storage.location(path) if storage.is_url(path) else Path(path)
    not_a_folder = "not a caption file (did you mean --caption-root?)"
    if storage.is_dir(path) and not storage.is_file(path):
        raise InputError(f"{path}: is a folder, {not_a_folder}")
    text = read_text_file(path, CAPTION_FILE_LIMIT, "caption file", not_a_folder=not_a_folder)
    table = _Table(path)
    suffix = path.suffix.lower()
    start = text.lstrip()[:1]
    first = next((line for line in text.splitlines() if line.strip()), "")
    if suffix in (".jsonl", ".ndjson"):
        _parse_json_lines(table, text)
    elif suffix == ".json" or (suffix not in (".csv", ".tsv") and start in ("{", "[")):
        _parse_json(table, text)
    elif suffix in (".csv", ".tsv"):
        _parse_csv(table, text, "\t" if suffix == ".tsv" else ",")
    elif _looks_like_header(first):
        _parse_csv(table, text, _looks_like_header(first))
    elif first and all("\t" in line for line in text.splitlines() if line.strip()):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                key, _, caption = line.partition("\t")
                table.add(key, caption, f"{path} line {number}")
    elif lines_allowed:
        lines = _parse_lines(path, text)
        if not lines:
            raise InputError(f"{path}: holds no captions")
        return CaptionFile(path, {}, lines)
    else:
        raise InputError(
            f"{path}: one caption per line, without the images they belong to: name each photo "
            f"(JSON, JSON Lines, or CSV/TSV with 'image' and 'caption' columns)"
        )
    if not table.entries:
        raise InputError(f"{path}: holds no captions")
    return CaptionFile(path, table.entries)


def load_caption_file(path: str | Path) -> dict[str, str]:
    """Read a caption file (JSON, JSON Lines, CSV or TSV, by suffix or content) into
    {normalised key: caption}, the first caption where a key has several; any problem is one
    InputError naming the file and the place."""
    return {key: captions[0] for key, captions in read_caption_file(path).by_key.items()}


# -- resolving ----------------------------------------------------------------------------------


class CaptionResolver:
    """Resolves captions by `CaptionRules`. The caption file is read, and checked against every
    photo of the run (`images`, before any sharding, so every shard agrees), when the resolver is
    made: malformed files and ambiguous keys fail here, before any work starts."""

    def __init__(
        self,
        rules: CaptionRules,
        images: Iterable[InputImage] = (),
        fallback: CaptionFallback | None = None,
    ) -> None:
        images = list(images)
        self.rules = rules
        self.fallback = fallback
        self.table: dict[str, str] = {}
        self._file_keys: dict[Path, str] = {}
        self._used_keys: set[str] = set()
        self.problems: list[str] = []  # caption files that could not be read (FIFOs, too big): skipped
        if rules.caption_file is not None:
            self.table = load_caption_file(rules.caption_file)
            self._file_keys = self._match_file_keys(list(images))
        root = rules.caption_root
        if root is not None and not storage.is_dir(storage.location(root) if storage.is_url(root) else Path(root)):
            raise InputError(f"{storage.describe(root)}: no such caption folder (--caption-root)")
        # On an object store one listing says which text files exist (not a request per photo).
        self._listed_text_files: set[str] | None = None
        remote_roots = {image.root for image in images if isinstance(image.root, storage.Url)}
        if remote_roots:
            if root is not None and storage.is_url(root):
                remote_roots.add(storage.location(root))
            self._listed_text_files = {
                str(storage.join(prefix, info.key))
                for prefix in remote_roots
                for info in storage.list_files(prefix)
                if info.key.endswith(".txt")
            }

    def _match_file_keys(self, images: list[InputImage]) -> dict[Path, str]:
        """Each photo's key in the caption file; raises on keys that match several photos and
        on photos that several keys give different captions."""
        chosen = match_keys(self.table, images, self.rules.caption_file, "captions")
        self._used_keys = {key for image in images for key in lookup_keys(image) if key in self.table}
        return chosen

    @property
    def unmatched_file_keys(self) -> int:
        """Keys of the caption file that name none of the run's photos (typos, other sets)."""
        return sum(1 for key in self.table if key not in self._used_keys)

    def _per_image(self, image: InputImage) -> Caption | None:
        rules = self.rules
        if self.table:
            key = self._file_keys.get(image.path)
            if key is None:
                key = find_key(self.table, image)
            if key is not None:
                return Caption(self.table[key], "caption-file", f"{rules.caption_file} [{key!r}]")
        text_files = []
        if rules.caption_root is not None:
            text_files += [("caption-root", p) for p in _text_file_candidates(image, caption_root_path(image, rules.caption_root))]
        if rules.sidecars:
            text_files += [("sidecar", p) for p in _text_file_candidates(image, sidecar_path(image))]
        for source, path in text_files:
            if isinstance(path, storage.Url) and self._listed_text_files is not None and str(path) not in self._listed_text_files:
                continue
            try:
                text = read_first_line(path)
            except InputError as exc:
                self.problems.append(str(exc))
                continue
            if text:
                return Caption(text, source, str(path))
        return None

    def _blanket(self) -> Caption | None:
        if self.rules.caption is not None:
            return Caption(clean_caption(self.rules.caption), "option", "--caption")
        if self.rules.domain is not None:
            return Caption(DOMAIN_CAPTIONS[self.rules.domain], "domain", self.rules.domain)
        return None

    def resolve(self, image: InputImage) -> Caption | None:
        """One photo's caption, or None when it has none (the fallback is asked too)."""
        return self.resolve_all([image])[0]

    def resolve_all(
        self,
        images: Sequence[InputImage],
        reuse: Callable[[InputImage], Caption | None] | None = None,
    ) -> list[Caption | None]:
        """Captions for many photos; photos without a caption of their own go to the fallback
        together, in one call. `reuse(image)` may give a caption the fallback made for it before
        (a rerun need not caption again what it captioned last time)."""
        captions = [self._per_image(image) for image in images]
        if reuse is not None and self.fallback is not None:
            captions = [caption or reuse(image) for caption, image in zip(captions, images)]
        missing = [i for i, caption in enumerate(captions) if caption is None]
        if missing and self.fallback is not None:
            generated = list(self.fallback.generate([images[i] for i in missing]))
            if len(generated) != len(missing):
                raise RuntimeError(f"caption fallback returned {len(generated)} captions for {len(missing)} photos")
            for i, text in zip(missing, generated):
                if text and clean_caption(text):
                    captions[i] = Caption(clean_caption(text), "generated", self.fallback.name)
        blanket = self._blanket()
        return [caption or blanket for caption in captions]
