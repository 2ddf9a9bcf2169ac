"""Finding a dataset's root: an explicit path, else `<data root>/<conventional folder>`, else the
environment (`TR2M_<NAME>_ROOT`, then `$TR2M_DATA_ROOT/<conventional folder>`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..errors import DatasetError

DATA_ROOT_ENV = "TR2M_DATA_ROOT"


class DatasetMissing(DatasetError):
    """No root was given or found for a dataset (as opposed to a root that is laid out wrongly);
    `tr2m eval --zero-shot all` skips such datasets with a notice."""


def root_env_var(name: str) -> str:
    return f"TR2M_{name.upper()}_ROOT"


def resolve_root(
    name: str,
    folders: tuple[str, ...],
    *,
    root: str | Path | None = None,
    data_root: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The folder to read `name` from. `folders` are its conventional sub-folder names under a
    data root, the first being the documented one."""
    environ = os.environ if environ is None else environ
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DatasetMissing(f"{path}: no such folder (given as the {name} root)")
        return path
    if data_root is not None:
        base = Path(data_root).expanduser()
        if not base.is_dir():
            raise DatasetError(f"{base}: no such folder (given as the data root)")
        found = _first_dir(base, folders)
        if found is not None:
            return found
        where = f"{base / folders[0]}"
    else:
        where = None
    env_root = environ.get(root_env_var(name))
    if env_root:
        path = Path(env_root).expanduser()
        if not path.is_dir():
            raise DatasetMissing(f"{path}: no such folder (from {root_env_var(name)})")
        return path
    env_data = environ.get(DATA_ROOT_ENV)
    if env_data and data_root is None:
        found = _first_dir(Path(env_data).expanduser(), folders)
        if found is not None:
            return found
        where = f"{Path(env_data) / folders[0]} (from {DATA_ROOT_ENV})"
    looked = f"no folder {where}; " if where else ""
    raise DatasetMissing(
        f"{name}: {looked}pass its root (--{name}-root DIR), a data root holding {folders[0]}/ "
        f"(--data-root), or set {root_env_var(name)}"
    )


def _first_dir(base: Path, folders: tuple[str, ...]) -> Path | None:
    for folder in folders:
        if (base / folder).is_dir():
            return base / folder
    return None
