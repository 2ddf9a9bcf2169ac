"""Input discovery for every command: the photos, what was left out and why, and the one error
for "no photos"."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..errors import InputError
from ..io.images import IMAGE_SUFFIXES
from ..io.inputs import Found, find_photos


def describe_inputs(inputs: Sequence[str | Path]) -> str:
    return ", ".join(str(i) for i in list(inputs)[:3]) + (", …" if len(inputs) > 3 else "")


def discover_photos(
    inputs: Sequence[str | Path],
    *,
    recursive: bool = True,
    own_output: str | Path | None = None,
    exclude: Callable[[Path], bool] | None = None,
) -> Found:
    """The photos of `inputs` (files, folders, @list.txt), sorted, and what was skipped. Raises
    InputError when there are none (saying what was skipped, if anything was)."""
    found = find_photos(inputs, recursive=recursive, own_output=own_output, exclude=exclude)
    if not found.images:
        suffixes = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        skipped = f"; skipped {found.describe_skipped()}" if found.skipped else ""
        raise InputError(f"no photos found in {describe_inputs(inputs)} (looked for {suffixes}){skipped}")
    return found
