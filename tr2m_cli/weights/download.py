"""Downloading weight files: resumable, verified and atomic.

Data goes to `<dest>.part` first. An interrupted download keeps the `.part`, and the next attempt
asks the server for the rest (HTTP Range). The finished file is checked against its sha256 when one
is known and only then renamed to its real name, so a file under the real name is always complete.
A checksum mismatch deletes the `.part`: those bytes cannot be trusted for resuming.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import WeightsError

CHUNK = 1 << 20
USER_AGENT = "tr2m-downloader"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """One downloader per file: a second process waits instead of writing the same `.part`."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent downloads are the user's call
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _copy_local(source: Path, part: Path) -> None:
    if not source.is_file():
        raise WeightsError(f"{source}: no such file")
    shutil.copyfile(source, part)


def _fetch_http(url: str, part: Path, progress: bool, timeout: float, label: str) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The server says our partial file is already whole (or bigger than the file): start over.
            part.unlink()
            return _fetch_http(url, part, progress, timeout, label)
        raise WeightsError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsError(f"download of {url} failed: {reason} (no network? see `tr2m weights --help` for offline use)") from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header: restart from the beginning
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None and length.isdigit() else None
        from tqdm.auto import tqdm

        received = offset
        with open(part, "ab" if offset else "wb") as sink, tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not progress,
            leave=False,
        ) as bar:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    sink.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (OSError, ValueError) as exc:  # connection reset, timeout, incomplete read
                sink.flush()
                raise WeightsError(
                    f"download of {url} interrupted at {received} bytes ({exc}); run the same "
                    f"command again to resume"
                ) from None
    if total is not None and received < total:
        raise WeightsError(
            f"download of {url} interrupted at {received} of {total} bytes; run the same command again to resume"
        )


def download_file(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch `url` (http, https, file://, or a local path) to `dest`, resuming and verifying.

    An existing `dest` whose checksum matches (or that exists, when none is known) is kept.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = sha256.lower() if sha256 else None
    part = dest.with_name(dest.name + ".part")
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if dest.is_file() and (expected is None or sha256_of(dest) == expected):
            return dest
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme in ("http", "https"):
            _fetch_http(url, part, progress, timeout, label=dest.name)
        elif parsed.scheme == "file":
            _copy_local(Path(urllib.request.url2pathname(parsed.path)), part)
        elif parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and os.name == "nt"):
            _copy_local(Path(url).expanduser(), part)
        else:
            raise WeightsError(f"{url}: unsupported URL scheme '{parsed.scheme}' (use http, https, file or a path)")
        if expected is not None:
            actual = sha256_of(part)
            if actual != expected:
                part.unlink()
                raise WeightsError(
                    f"download of {url} failed its checksum (expected sha256 {expected}, got {actual}); "
                    f"the file was discarded"
                )
        os.replace(part, dest)
    return dest
