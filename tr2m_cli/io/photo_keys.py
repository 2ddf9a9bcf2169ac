"""How a file that names photos (a caption file, an intrinsics file, a COLMAP model) finds them.

A key is the photo's path relative to the input folder (with or without its suffix), its file
name, or its stem; `\\` and a leading `./` are ignored. `match_keys` checks a whole table against
every photo of a run before any work: a key that matches several photos, or several keys that
give one photo different values, is an error naming them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import InputError
from .inputs import InputImage

IMAGE_FIELDS = ("image", "file", "path", "filename")  # the field naming the photo in a record


def normalise_key(key: Any) -> str:
    key = str(key).strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


def lookup_keys(image: InputImage) -> list[str]:
    """The keys under which a file may name a photo, most specific first."""
    keys = [str(image.path), image.key, image.relative_to_input.as_posix()]
    keys += [image.relative.with_suffix("").as_posix(), image.relative_to_input.with_suffix("").as_posix()]
    keys += [image.path.name, image.path.stem]
    return list(dict.fromkeys(keys))


def find_key(table: Mapping[str, Any], image: InputImage) -> str | None:
    """The most specific key of `table` naming `image`, or None."""
    return next((key for key in lookup_keys(image) if key in table), None)


def match_keys(table: Mapping[str, Any], images: Iterable[InputImage], source: Any, values: str) -> dict[Path, str]:
    """{photo path: its key in `table`} for the photos `table` names; raises InputError (naming
    `source`, and the table's `values`, e.g. "captions") on ambiguity."""
    chosen: dict[Path, str] = {}
    claimed: dict[str, list[InputImage]] = {}
    for image in images:
        keys = [key for key in lookup_keys(image) if key in table]
        if not keys:
            continue
        if any(table[key] != table[keys[0]] for key in keys[1:]):
            shown = ", ".join(repr(k) for k in keys)
            raise InputError(f"{source}: keys {shown} all match {image.key} but give different {values}: keep one")
        for key in keys:
            claimed.setdefault(key, []).append(image)
        chosen[image.path] = keys[0]
    for key, owners in claimed.items():
        if len(owners) > 1:
            names = ", ".join(o.key for o in owners[:4]) + (", …" if len(owners) > 4 else "")
            raise InputError(
                f"{source}: key {key!r} matches {len(owners)} photos ({names}): "
                f"key them by their path relative to the input folder, e.g. {owners[0].key!r}"
            )
    return chosen
