"""Named captioners: the `[captioners.NAME]` tables of the model registry (`weights/registry.toml`).

Depth models and captioners live in one file so that a lab keeps one list of what it runs (and
`$TR2M_REGISTRY` swaps both). The foundation's `load_registry()` parses `[models.*]` and hands
every other table over raw; this module owns the `captioners` tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import WeightsError
from ..weights.registry import NAME_PATTERN, Registry, load_registry
from .prompts import PROMPT_STYLES

DEFAULT_CAPTIONER = "blip-base"
DEFAULT_MAX_NEW_TOKENS = 40


@dataclass(frozen=True)
class CaptionerEntry:
    """One `[captioners.NAME]` table.

    `model` is a Hugging Face id or a folder (relative paths are read from the registry file's
    folder); `prompt_style` and `prompt` default to what `prompts.py` knows for the model's type.
    """

    name: str
    model: str
    description: str = ""
    prompt_style: str | None = None
    prompt: str | None = None
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    num_beams: int = 1
    licence: str = ""
    source: str = ""


_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "description": str,
    "prompt_style": str,
    "prompt": str,
    "max_new_tokens": int,
    "num_beams": int,
    "licence": str,
    "source": str,
}


def _entry(path: Path, name: str, table: Any) -> CaptionerEntry:
    where = f"{path}: [captioners.{name}]"
    if not NAME_PATTERN.match(name):
        raise WeightsError(f"{path}: captioner name '{name}' may only hold letters, digits, '.', '_' and '-'")
    if not isinstance(table, Mapping):
        raise WeightsError(f"{where} must be a table of keys")
    nested = [key for key, value in table.items() if isinstance(value, Mapping)]
    if nested:
        raise WeightsError(
            f"{where} holds tables ({', '.join(nested)}): a name with dots must be quoted, "
            f'[captioners."{name}.{nested[0]}"]'
        )
    unknown = set(table) - set(_TYPES)
    if unknown:
        raise WeightsError(f"{where} has unknown keys: {', '.join(sorted(unknown))} (known: {', '.join(_TYPES)})")
    if "model" not in table:
        raise WeightsError(f"{where} needs a model (a Hugging Face id or a folder)")
    for key, value in table.items():
        # bool is an int in Python; `max_new_tokens = true` is still a mistake.
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
            raise WeightsError(f"{where}: {key} must be a {_TYPES[key].__name__}, not {value!r}")
    style = table.get("prompt_style")
    if style is not None and style not in PROMPT_STYLES:
        raise WeightsError(f"{where}: prompt_style '{style}' is not one of {', '.join(PROMPT_STYLES)}")
    for key in ("max_new_tokens", "num_beams"):
        if key in table and table[key] < 1:
            raise WeightsError(f"{where}: {key} must be at least 1, not {table[key]}")
    model = table["model"]
    if model.startswith((".", "~")) or Path(model).is_absolute():
        model = str((path.parent / Path(model).expanduser()).resolve())
    return CaptionerEntry(name=name, **{**table, "model": model})


def captioner_entries(registry: Registry | None = None) -> dict[str, CaptionerEntry]:
    """Every `[captioners.NAME]` of the registry, checked; errors name the file and the table."""
    registry = registry or load_registry()
    tables = registry.raw.get("captioners") or {}
    if not isinstance(tables, Mapping):
        raise WeightsError(f"{registry.path}: 'captioners' must be a table of [captioners.NAME] tables")
    return {name: _entry(registry.path, name, table) for name, table in tables.items()}


def find_captioner(name: str, registry: Registry | None = None) -> CaptionerEntry | None:
    return captioner_entries(registry).get(name)
