"""From what a user types after `--model` to a model folder on disk.

`--model` takes a model folder (anything with a tr2m.json) or a registry name. A registry name
resolves to `<cache>/models/<name>/`; when that is missing, its head is downloaded and imported,
unless the user is offline, in which case one line says what is missing and how to get it.
"""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

from ..errors import WeightsError
from ..io.locks import FileLock
from .cache import downloads_root, models_root
from .download import download_file
from .folder import import_head, is_model_folder, read_model_folder
from .hub import fetch_snapshot, is_offline, resolve_source
from .registry import ModelEntry, load_registry

DEFAULT_MODEL = "tr2m-official"


def cached_model_folder(name: str) -> Path:
    return models_root() / name


def _offline_message(entry: ModelEntry, folder: Path) -> str:
    return (
        f"model '{entry.name}' is not in the cache ({folder}) and downloads are off "
        f"(HF_HUB_OFFLINE/TR2M_OFFLINE): run `tr2m weights download {entry.name}` on a connected "
        f"machine and copy {folder.parent} (set TR2M_HOME to where you put it) and the Hugging Face "
        f"cache (HF_HOME), or pass --model DIR with a model folder"
    )


def resolve_model(model: str | Path = DEFAULT_MODEL, *, download: bool = True, progress: bool = True) -> Path:
    """Return the model folder for a folder path or a registry name, downloading if allowed."""
    path = Path(str(model)).expanduser()
    if path.is_dir():
        if not is_model_folder(path):
            read_model_folder(path)  # raises the "not a model folder" error
        return path
    if path.is_file():
        raise WeightsError(
            f"{path}: is a file; --model takes a model folder or a registry name. Turn a head file "
            f"into a model folder with `tr2m weights import {path} --out DIR`"
        )
    entry = load_registry().model(str(model))
    folder = cached_model_folder(entry.name)
    if is_model_folder(folder):
        return folder
    if not download or is_offline():
        raise WeightsError(_offline_message(entry, folder))
    return download_model(entry.name, encoders=False, progress=progress)


def download_model(name: str, *, encoders: bool = True, progress: bool = True, force: bool = False) -> Path:
    """Fetch a registry model's head into the cache and make it a model folder; with `encoders`,
    also fetch its three encoders into the Hugging Face cache so later runs can be offline.

    One download per model at a time (a lock in the cache): a second process waits, then finds
    the model there. A downloaded file that does not import as a head (an HTML error page, a
    short body) is deleted, never cached; `force` fetches again whatever is cached."""
    entry = load_registry().model(name)
    folder = cached_model_folder(entry.name)
    with FileLock(models_root() / f".{entry.name}.lock"):
        if force or not is_model_folder(folder):
            if is_offline():
                raise WeightsError(_offline_message(entry, folder))
            _fetch_head(entry, folder, progress=progress, force=force)
    if encoders:
        fetch_encoders(folder, progress=progress)
    return folder


def _fetch_head(entry: ModelEntry, folder: Path, *, progress: bool, force: bool) -> None:
    import secrets

    file_name = Path(urllib.parse.urlparse(entry.head_url).path).name or "head.pth"
    target = downloads_root() / entry.name / file_name
    if force:  # what is cached (a whole file, or a part of one) is not trusted again
        for stale in (target, target.with_name(target.name + ".part")):
            stale.unlink(missing_ok=True)
    downloaded = download_file(entry.head_url, target, sha256=entry.head_sha256, progress=progress)
    staging = folder.with_name(f".{folder.name}.importing-{secrets.token_hex(4)}")
    try:
        import_head(
            downloaded,
            staging,
            image_encoder=entry.image_encoder,
            text_encoder=entry.text_encoder,
            depth_model=entry.depth_model,
            name=entry.name,
            attention_heads=entry.attention_heads,
            token_budget=entry.token_budget,
            domain_units=entry.domain_units,
            provenance=entry.provenance(),
            overwrite=True,
        )
    except WeightsError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        downloaded.unlink(missing_ok=True)  # never cache what is not a head: the next try fetches again
        raise WeightsError(f"{entry.head_url}: the downloaded file is not a usable head, so it was not kept ({exc})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Swap the finished folder in whole, so a half-imported model never looks usable.
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    downloaded.unlink(missing_ok=True)


def fetch_encoders(folder: str | Path, *, progress: bool = True) -> list[str]:
    """Download the model's Hugging Face encoders into the HF cache (local folders are left as
    they are). Returns the ids fetched."""
    spec = read_model_folder(folder)
    fetched = []
    for role, source in (
        ("image encoder", spec.encoders.image),
        ("text encoder", spec.encoders.text),
        ("relative depth model", spec.encoders.relative_depth),
    ):
        resolved = resolve_source(source, folder)
        if Path(resolved).is_dir():
            continue
        fetch_snapshot(role, resolved, progress=progress)
        fetched.append(resolved)
    return fetched
