"""Photos as plain rows, for engines that move work between machines (Ray Data, Daft, Spark).

A row holds only strings (JSON- and Arrow-friendly); `photo_row` / `row_photo` turn a photo into
one and back, with the fields a worker uses (its location, key and output stem). Engines hand a
worker its rows in their own shape; `batch_rows` reads them all, and `row_columns` gives columns
back. `tr2m convert` adds its caption, fingerprint and camera to the row (convert.plan), `tr2m
caption` uses it as it is (caption.ray_engine).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping, Sequence

import numpy as np

from ..io import storage
from ..io.inputs import InputImage


def photo_row(image: InputImage) -> dict[str, str]:
    return {"input": image.key, "path": str(image.path), "output_stem": image.output_stem.as_posix()}


def row_photo(row: Mapping[str, Any]) -> InputImage:
    """The InputImage a row stands for, on whichever machine reads it."""
    path = storage.location(str(row["path"]))
    return InputImage(
        path=path,
        root=path.parent,
        relative=PurePosixPath(str(row["input"])),
        input_root=path.parent,
        output_stem=PurePosixPath(str(row["output_stem"])),
    )


def batch_rows(batch: Any) -> list[dict[str, Any]]:
    """Rows from what engines pass: a dict of columns (Ray Data, Daft), a pandas DataFrame, or
    a list of row dicts."""
    if isinstance(batch, Mapping):
        columns = {name: list(values) for name, values in batch.items()}
        count = len(next(iter(columns.values()), []))
        return [{name: values[i] for name, values in columns.items()} for i in range(count)]
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):
        return batch.to_dict("records")
    return [dict(row) for row in batch]


def row_columns(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Rows → a dict of object columns (arrays kept whole, one per cell), as engines take them back."""
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if all(isinstance(v, np.ndarray) or v is None for v in values):
            column = np.empty(len(values), dtype=object)
            column[:] = values
        else:
            column = np.array(values, dtype=object)
        columns[name] = column
    return columns
