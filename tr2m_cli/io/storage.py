"""Where files live: local paths and object-store URLs behind one small interface.

Inputs, caption files and output folders may be local paths or fsspec URLs: `s3://bucket/key`,
`gs://` (`gcs://`), `az://` (`abfs://`, `adl://`), `memory://` (tests), anything fsspec knows.
`file:///x` is the local path `/x`. Everything else in tr2m works on *locations* — a `Path` for
local files, a `Url` for the rest — and reads, lists and writes them only through this module:

- `list_files(prefix)`: every file under a folder or prefix (one listing; hidden names skipped),
  with size and modification time, as posix paths relative to the prefix: the same keys locally
  and on an object store, so outputs keep the same layout everywhere.
- `read_bytes`, `open_for_reading`, `exists`, `is_file`, `is_dir`, `stat`.
- `write_bytes(location, data)` and `staged_write(location)`: locally a hidden temporary renamed
  into place (io.atomic); on an object store one complete upload after the data is whole, so a
  reader, or a run killed half-way, never sees part of an object.
- `describe(location)`: the location for messages, with any credentials cut out.

Credentials are the storage library's own (environment variables, profiles, instance roles:
`AWS_PROFILE`, `AWS_ENDPOINT_URL_S3`, `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_*`, ...).
tr2m never passes them around, prints them, or writes them to a manifest.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Iterator, Union

from ..errors import InputError, OutputError, Tr2mError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://(.*)$", re.DOTALL)
# Environment variables whose values are secrets: never allowed into a message.
_SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_API_KEY",
)
# The extra that brings each family of object stores (named when its library is missing).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure", "adl": "azure"}


@dataclass(frozen=True)
class Url:
    """A file or prefix on an fsspec filesystem, with the path arithmetic tr2m needs.

    `protocol`: "s3", "gs", "memory", ...; `path`: the rest without a trailing slash
    ("bucket/frames/a.jpg"). Deliberately not os.PathLike, so nothing opens it as a local file.
    """

    protocol: str
    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", self.path.rstrip("/"))

    def __str__(self) -> str:
        return f"{self.protocol}://{self.path}"

    def __truediv__(self, other: str | PurePosixPath) -> "Url":
        part = str(other).strip("/")
        return Url(self.protocol, f"{self.path}/{part}" if self.path else part)

    def joinpath(self, *parts: str) -> "Url":
        url = self
        for part in parts:
            url = url / part
        return url

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def parent(self) -> "Url":
        return Url(self.protocol, posixpath.dirname(self.path))

    def with_name(self, name: str) -> "Url":
        return self.parent / name

    def with_suffix(self, suffix: str) -> "Url":
        return self.with_name(PurePosixPath(self.name).with_suffix(suffix).name)

    def relative_to(self, other: "Url") -> PurePosixPath:
        if not isinstance(other, Url) or other.protocol != self.protocol:
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.path).relative_to(other.path)

    def is_relative_to(self, other: "Url") -> bool:
        try:
            self.relative_to(other)
        except ValueError:
            return False
        return True


Location = Union[Path, Url]


def is_url(text: str | os.PathLike | Url) -> bool:
    """True for `scheme://...` (but not a Windows drive like `C:\\x`)."""
    if isinstance(text, Url):
        return True
    if isinstance(text, os.PathLike):
        return False
    return _SCHEME.match(str(text)) is not None


def location(where: str | os.PathLike | Url) -> Location:
    """A command-line argument or API value → a `Path` (local, absolute, `~` expanded, links
    kept) or a `Url`. `file://` URLs are local paths, so local writes stay atomic renames."""
    if isinstance(where, Url):
        return where
    if isinstance(where, os.PathLike) or not is_url(where):
        return Path(os.path.abspath(Path(where).expanduser()))
    protocol, rest = _SCHEME.match(str(where)).groups()  # type: ignore[union-attr]
    protocol = protocol.lower()
    if protocol in ("file", "local"):
        return Path(os.path.abspath("/" + rest.lstrip("/")))
    if "?" in rest or "#" in rest:
        raise InputError(f"{describe(where)}: query strings are not used in storage URLs; give credentials through the environment")
    return Url(protocol, rest)


def join(base: Location, relative: str | PurePosixPath) -> Location:
    """`base / relative` for a posix relative key (the same key on every kind of storage)."""
    relative = PurePosixPath(relative)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{relative}: not a relative key")
    return base / relative.as_posix()


def relative_key(item: Location, base: Location) -> str:
    """The posix key of `item` under `base` (the inverse of `join`)."""
    if isinstance(item, Url):
        return item.relative_to(base).as_posix()  # type: ignore[arg-type]
    return Path(item).relative_to(base).as_posix()


# -- messages -----------------------------------------------------------------------------------


def redact(text: str) -> str:
    """`text` with user:password@ in URLs, query strings of URLs and the values of known secret
    environment variables cut out: safe to print and to record."""
    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@", r"\1", str(text))
    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s?#]*)[?#]\S*", r"\1", text)
    for variable in _SECRET_VARIABLES:
        secret = os.environ.get(variable)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def describe(where: str | os.PathLike | Url) -> str:
    return redact(str(where))


def _message(exc: BaseException) -> str:
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return redact(" ".join(str(detail).split()))


# -- filesystems --------------------------------------------------------------------------------


def filesystem(url: Url):
    """The fsspec filesystem for `url`'s protocol, configured the library's usual way (fsspec
    caches instances). Names the extra to install when the backend is missing."""
    import fsspec

    try:
        return fsspec.filesystem(url.protocol)
    except ImportError:
        extra = _EXTRAS.get(url.protocol)
        hint = f"pip install 'tr2m[{extra}]'" if extra else "install the fsspec backend for it"
        raise InputError(f"{url.protocol}:// storage needs its library: {hint}") from None
    except ValueError as exc:
        raise InputError(f"{describe(url)}: unknown storage ({_message(exc)})") from None


@contextlib.contextmanager
def storage_errors(where: Location, action: str, error: type[Tr2mError] = InputError) -> Iterator[None]:
    """Turn what a storage backend raises into one line naming the location (credentials cut)."""
    try:
        yield
    except Tr2mError:
        raise
    except FileNotFoundError:
        raise error(f"{describe(where)}: no such file or folder") from None
    except PermissionError as exc:
        raise error(f"{describe(where)}: cannot {action}: permission denied ({_message(exc)})") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise error(f"{describe(where)}: cannot {action} ({_message(exc)})") from None


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """One file found under a prefix: its key (posix, relative), size and modification time
    (seconds since the epoch; None where the store does not say)."""

    key: str
    size: int
    mtime: float | None


def exists(where: Location) -> bool:
    if isinstance(where, Path):
        return where.exists()
    with storage_errors(where, "look"):
        return bool(filesystem(where).exists(where.path))


def is_file(where: Location) -> bool:
    if isinstance(where, Path):
        return where.is_file()
    with storage_errors(where, "look"):
        return bool(filesystem(where).isfile(where.path))


def is_dir(where: Location) -> bool:
    """A local folder, or a prefix with objects under it."""
    if isinstance(where, Path):
        return where.is_dir()
    with storage_errors(where, "look"):
        return bool(filesystem(where).isdir(where.path))


def _mtime(info: dict) -> float | None:
    for field in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(field)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def stat(where: Location) -> FileInfo:
    if isinstance(where, Path):
        with storage_errors(where, "read"):
            result = where.stat()
        return FileInfo(where.name, result.st_size, result.st_mtime)
    with storage_errors(where, "read"):
        info = filesystem(where).info(where.path)
    return FileInfo(where.name, int(info.get("size") or 0), _mtime(info))


def read_bytes(where: Location) -> bytes:
    if isinstance(where, Path):
        with storage_errors(where, "read"):
            return where.read_bytes()
    with storage_errors(where, "read"):
        return filesystem(where).cat_file(where.path)


@contextlib.contextmanager
def open_for_reading(where: Location) -> Iterator[IO[bytes]]:
    """A binary file object (a photo for PIL, a caption file): the local file itself, or the
    object's bytes read in one request."""
    if isinstance(where, Path):
        with open(where, "rb") as handle:
            yield handle
        return
    import io

    with io.BytesIO(read_bytes(where)) as handle:
        yield handle


def is_hidden(key: str) -> bool:
    """A key with a hidden part (a name starting with "."): skipped by listings by default."""
    return any(part.startswith(".") for part in key.split("/"))


def list_files(prefix: Location, *, recursive: bool = True, hidden: bool = False) -> list[FileInfo]:
    """Every file under a folder or prefix, sorted by key, in one listing (one paginated LIST on
    an object store). Hidden names (a part starting with ".") are left out unless `hidden`.
    A prefix with nothing under it gives an empty list."""
    found: list[FileInfo] = []
    if isinstance(prefix, Path):
        if not prefix.is_dir():
            return found
        for folder, dirs, files in os.walk(prefix):
            if not hidden:
                dirs[:] = [d for d in dirs if not d.startswith(".")]
            if not recursive:
                dirs[:] = []
            for name in files:
                if name.startswith(".") and not hidden:
                    continue
                path = Path(folder) / name
                try:
                    result = path.stat()
                except OSError:
                    continue
                found.append(FileInfo(path.relative_to(prefix).as_posix(), result.st_size, result.st_mtime))
        return sorted(found, key=lambda info: info.key)
    fs = filesystem(prefix)
    with storage_errors(prefix, "list"):
        try:
            entries = fs.find(prefix.path, maxdepth=None if recursive else 1, withdirs=False, detail=True)
        except FileNotFoundError:
            return found
    base = prefix.path.strip("/")
    for name, info in entries.items():
        if info.get("type") == "directory":
            continue
        key = name.strip("/")
        if base:
            if not key.startswith(base + "/"):
                continue  # the prefix itself, when it names a file
            key = key[len(base) + 1 :]
        if not key or (not hidden and is_hidden(key)):
            continue
        found.append(FileInfo(key, int(info.get("size") or 0), _mtime(info)))
    return sorted(found, key=lambda info: info.key)


# -- writing ------------------------------------------------------------------------------------


def write_bytes(where: Location, data: bytes) -> None:
    """Write a whole file: an atomic rename locally, one complete upload on an object store."""
    if isinstance(where, Path):
        from .atomic import write_bytes as write_local

        write_local(where, data)
        return
    with storage_errors(where, "write", OutputError):
        filesystem(where).pipe_file(where.path, bytes(data))


def write_text(where: Location, text: str) -> None:
    write_bytes(where, text.encode("utf-8"))


@contextlib.contextmanager
def staged_write(where: Location) -> Iterator[Path]:
    """Yield a local path to write `where`'s content to (its suffix kept, for writers that pick
    the format from it). On success it becomes `where`: renamed into place locally, uploaded in
    one piece to an object store; on an error nothing appears and the temporary is removed."""
    if isinstance(where, Path):
        from .atomic import atomic_path

        with atomic_path(where) as temp:
            yield temp
        return
    folder = tempfile.mkdtemp(prefix="tr2m-upload-")
    try:
        temp = Path(folder) / (where.name or "object")
        yield temp
        with storage_errors(where, "write", OutputError):
            filesystem(where).put_file(str(temp), where.path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove(where: Location) -> None:
    """Delete one file; a file already gone is fine."""
    if isinstance(where, Path):
        with contextlib.suppress(FileNotFoundError):
            where.unlink()
        return
    with storage_errors(where, "delete", OutputError):
        with contextlib.suppress(FileNotFoundError):
            filesystem(where).rm_file(where.path)


def make_folder(where: Location) -> None:
    """Create a local folder (and its parents); object stores have none to create."""
    if isinstance(where, Path):
        with storage_errors(where, "create the folder", OutputError):
            where.mkdir(parents=True, exist_ok=True)


def check_writable(out: Location, option: str = "--out") -> None:
    """Refuse an output location that cannot be written, before any work: a local folder is
    made; on an object store a probe object is written and deleted (this checks credentials)."""
    import secrets

    if is_file(out):
        raise OutputError(f"{describe(out)}: exists and is not a folder ({option})")
    make_folder(out)
    probe = join(out, f".tr2m-write-test-{secrets.token_hex(4)}")
    try:
        write_bytes(probe, b"")
    except (OSError, OutputError) as exc:
        raise OutputError(f"{describe(out)}: cannot be written ({redact(str(exc))}) ({option})") from None
    remove(probe)
