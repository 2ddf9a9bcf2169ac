"""The registry of named models: `weights/registry.toml` at the repository root (a copy of it
ships inside the wheel). $TR2M_REGISTRY points to another file, for a lab's own models."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import WeightsError
from ..model.config import DEFAULT_TOKEN_BUDGET
from ..model.encoders import DEFAULT_DEPTH_MODEL, DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    head_url: str
    description: str = ""
    head_sha256: str | None = None
    image_encoder: str = DEFAULT_IMAGE_ENCODER
    text_encoder: str = DEFAULT_TEXT_ENCODER
    depth_model: str = DEFAULT_DEPTH_MODEL
    attention_heads: int = 8
    token_budget: int = DEFAULT_TOKEN_BUDGET
    domain_units: Mapping[str, str] = field(default_factory=dict)
    licence: str = ""
    source: str = ""
    citation: str = ""

    def provenance(self) -> dict[str, Any]:
        return {
            "registry_name": self.name,
            "head_url": self.head_url,
            "head_sha256": self.head_sha256,
            "licence": self.licence,
            "source": self.source,
            "citation": self.citation,
        }


@dataclass(frozen=True)
class Registry:
    path: Path
    models: Mapping[str, ModelEntry]
    raw: Mapping[str, Any]  # every table, for sections other modules own (e.g. captioners)

    def model(self, name: str) -> ModelEntry:
        if name not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise WeightsError(f"unknown model '{name}': not a folder and not in the registry {self.path} (known: {known})")
        return self.models[name]


def registry_path() -> Path:
    override = os.environ.get("TR2M_REGISTRY", "").strip()
    if override:
        return Path(override).expanduser()
    packaged = Path(__file__).resolve().parent.parent / "_registry.toml"
    if packaged.is_file():
        return packaged
    # A source checkout or an editable install: the file people edit, at the repository root.
    return Path(__file__).resolve().parents[2] / "weights" / "registry.toml"


def load_registry(path: str | Path | None = None) -> Registry:
    path = Path(path) if path is not None else registry_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{path}: registry file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: not a valid registry (TOML): {exc}") from None
    tables = raw.get("models", {})
    if not isinstance(tables, dict):
        raise WeightsError(f"{path}: 'models' must be a table of [models.NAME] tables, not {_type(tables)}")
    models = {}
    for name, table in tables.items():
        if not NAME_PATTERN.match(name):
            raise WeightsError(f"{path}: model name '{name}' may only hold letters, digits, '.', '_' and '-'")
        models[name] = ModelEntry(name=name, **check_entry(table, f"{path}: [models.{name}]"))
    return Registry(path=path, models=models, raw=raw)


# Every registry key: its type, and its range where a wrong value would cost memory or a crash.
TEXT_KEYS = ("head_url", "description", "image_encoder", "text_encoder", "depth_model", "licence", "source", "citation")
INTEGER_RANGES = {"attention_heads": (1, 256), "token_budget": (1, 100_000)}
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def _type(value: Any) -> str:
    return {str: "text", int: "a number", float: "a number", bool: "true/false", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


def check_entry(table: Any, where: str) -> dict[str, Any]:
    """A registry model table, type- and range-checked; one WeightsError naming the key."""
    from ..model.config import UNIT_TO_METRES

    if not isinstance(table, dict):
        raise WeightsError(f"{where}: must be a table of keys, not {_type(table)}")
    known = set(ModelEntry.__dataclass_fields__) - {"name"}
    unknown = set(table) - known
    if unknown:
        raise WeightsError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    if "head_url" not in table:
        raise WeightsError(f"{where} needs a head_url")
    for key in TEXT_KEYS:
        if key in table and not isinstance(table[key], str):
            raise WeightsError(f"{where}: {key} must be text, not {_type(table[key])} ({table[key]!r})")
    if not table["head_url"].strip():
        raise WeightsError(f"{where}: head_url is empty")
    for key, (low, high) in INTEGER_RANGES.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise WeightsError(f"{where}: {key} must be a whole number, not {_type(value)} ({value!r})")
            if not low <= value <= high:
                raise WeightsError(f"{where}: {key} = {value} is out of range ({low}–{high})")
    sha = table.get("head_sha256")
    if sha is not None and (not isinstance(sha, str) or not SHA256.match(sha)):
        raise WeightsError(f"{where}: head_sha256 must be 64 hexadecimal digits, not {sha!r}")
    units = table.get("domain_units", {})
    if not isinstance(units, dict):
        raise WeightsError(f"{where}: domain_units must be a table (domain = \"unit\"), not {_type(units)}")
    for domain, unit in units.items():
        if unit not in UNIT_TO_METRES:
            raise WeightsError(f"{where}: domain_units.{domain} = {unit!r}: unknown unit (known: {', '.join(UNIT_TO_METRES)})")
    return dict(table)
