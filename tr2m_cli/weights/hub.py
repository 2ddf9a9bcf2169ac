"""The one place tr2m talks to the Hugging Face hub and its cache.

Everything that loads or fetches a transformers model goes through here, so every caller gets the
same rules: offline when the user says so (`HF_HUB_OFFLINE` or `TR2M_OFFLINE`), local folders
before hub ids, quiet loads, and any failure as one line saying what is missing and how to get it.

| function | what it does |
|---|---|
| `is_offline()` | whether downloads are off |
| `resolve_source(source, base_dir)` | a folder (absolute) or a hub id |
| `quiet_transformers()` | a context without transformers' load reports and progress bars |
| `from_pretrained(role, source, loader)` | a transformers `from_pretrained` with the rules above |
| `fetch_snapshot(role, repo_id)` | download a repository's loadable files into the HF cache |
| `is_cached(repo_id)` | whether those files are already in the HF cache |
| `ensure_cached(role, repo_id)` | fetch them, with a progress bar, unless cached or offline |
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from ..errors import WeightsError, first_line

T = TypeVar("T")

DOWNLOAD_ADVICE = (
    "run `tr2m weights download MODEL` on a connected machine and copy its cache (HF_HOME), "
    "or pass a local folder saved with save_pretrained"
)
# Only what transformers needs to build a model: no TensorFlow/Flax/ONNX copies of the weights.
LOADABLE_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


def is_offline() -> bool:
    """Offline when the user says so, through Hugging Face's variable or ours."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TR2M_OFFLINE"))


def resolve_source(source: str | Path, base_dir: str | Path | None = None) -> str:
    """A local folder (absolute, or relative to `base_dir` — a model folder — or to the working
    directory) becomes an absolute path; anything else is taken for a Hugging Face id."""
    text = str(source)
    candidates = []
    if base_dir is not None and not Path(text).is_absolute():
        candidates.append(Path(base_dir) / text)
    candidates.append(Path(text).expanduser())
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate.resolve())
    if text.startswith((".", "/", "~")) or text.endswith(("/", os.sep)):
        raise WeightsError(f"{text}: no such folder")
    return text


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars for the duration of a load; the
    user's own logging settings are restored afterwards."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_failure(role: str, source: str, exc: BaseException, advice: str = DOWNLOAD_ADVICE) -> WeightsError:
    """The one-line error for a `source` (folder or hub id) that could not be loaded."""
    first = first_line(exc)
    if Path(source).is_dir():
        return WeightsError(f"{role} folder {source}: cannot be loaded: {first}")
    from huggingface_hub import constants

    if is_offline():
        return WeightsError(
            f"{role} '{source}' is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and "
            f"HF_HUB_OFFLINE/TR2M_OFFLINE is set: {advice}"
        )
    return WeightsError(
        f"{role} '{source}' is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and could "
        f"not be fetched ({first}): {advice}"
    )


def from_pretrained(role: str, source: str, loader: Callable[..., T], *, advice: str = DOWNLOAD_ADVICE, **kwargs) -> T:
    """`loader(source)` (a transformers `from_pretrained`) with the offline rules, quietly, its
    failures turned into one line that names `role` and says what is missing and `advice` on how
    to get it. Local folders never reach the hub."""
    with quiet_transformers():
        try:
            return loader(source, local_files_only=is_offline() or Path(source).is_dir(), **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise load_failure(role, source, exc, advice) from None


def fetch_snapshot(role: str, repo_id: str, *, progress: bool = True, patterns: list[str] | None = None, force: bool = False) -> str:
    """Download a Hugging Face repository (only the files transformers loads) into the HF cache
    (`force`: again, even where cached); returns its local folder. Any failure is one WeightsError
    naming `role` and the id."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if is_offline():
        raise WeightsError(f"{role} '{repo_id}': cannot download while HF_HUB_OFFLINE/TR2M_OFFLINE is set")
    if not progress:
        disable_progress_bars()
    try:
        return snapshot_download(repo_id, allow_patterns=patterns or LOADABLE_FILE_PATTERNS, force_download=force)
    except Exception as exc:  # the hub raises many types; all mean "could not fetch"
        first = first_line(exc)
        raise WeightsError(f"{role} '{repo_id}': download failed: {first}") from None
    finally:
        if not progress:
            enable_progress_bars()


def is_cached(repo_id: str, *, patterns: list[str] | None = None) -> bool:
    """Whether a repository's loadable files are all in the HF cache (asks no server)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, allow_patterns=patterns or LOADABLE_FILE_PATTERNS, local_files_only=True)
    except Exception:  # noqa: BLE001 - "not cached" comes as several error types
        return False
    return True


def ensure_cached(role: str, repo_id: str, *, progress: bool = True) -> None:
    """First use of a hub encoder: download it here, with a progress bar, rather than silently
    inside `from_pretrained` (whose bars `quiet_transformers` hides). Offline, nothing is fetched
    and loading reports what is missing."""
    if is_offline() or Path(repo_id).is_dir() or is_cached(repo_id):
        return
    fetch_snapshot(role, repo_id, progress=progress)
