"""Input discovery for every command: the photos, what was left out and why, and the one error
for "no photos"."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..errors import InputError
from ..io.images import IMAGE_SUFFIXES
from ..io.inputs import Found, find_inputs


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
    InputError when there are none (saying what was skipped, if anything was). Videos and ROS
    bags among them are said to be skipped: the commands that take only photos (`tr2m caption`,
    `convert` on Ray or object stores) leave them out, never in silence."""
    from ..io.inputs import Skipped

    found = find_inputs(inputs, recursive=recursive, own_output=own_output, exclude=exclude, clips=True)
    found.skipped += [Skipped(Path(str(c.path)), "videos and ROS bags (read only by `tr2m convert` on this machine)") for c in found.clips]
    found.clips = []
    if not found.images:
        suffixes = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        skipped = f"; skipped {found.describe_skipped()}" if found.skipped else ""
        raise InputError(f"no photos found in {describe_inputs(inputs)} (looked for {suffixes}){skipped}")
    return found


def discover_inputs(
    inputs: Sequence[str | Path],
    *,
    recursive: bool = True,
    own_output: str | Path | None = None,
    sequence: bool = False,
) -> Found:
    """Photos and clips (videos, ROS bags; with `sequence`, folders of numbered frames) of
    `inputs`, sorted, and what was skipped. Raises InputError when there are none."""
    from ..sequences.kinds import BAG_SUFFIXES, VIDEO_SUFFIXES

    found = find_inputs(inputs, recursive=recursive, own_output=own_output, clips=True, sequence=sequence)
    if not found.images and not found.clips:
        def listed(suffixes) -> str:
            return ", ".join(sorted(s.lstrip(".") for s in suffixes))

        skipped = f"; skipped {found.describe_skipped()}" if found.skipped else ""
        raise InputError(
            f"no photos found in {describe_inputs(inputs)} (looked for {listed(IMAGE_SUFFIXES)}, videos "
            f"{listed(VIDEO_SUFFIXES)} and ROS bags {listed(BAG_SUFFIXES)}){skipped}"
        )
    return found
