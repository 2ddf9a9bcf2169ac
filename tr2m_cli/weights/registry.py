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
    models = {}
    known = set(ModelEntry.__dataclass_fields__) - {"name"}
    for name, table in (raw.get("models") or {}).items():
        if not NAME_PATTERN.match(name):
            raise WeightsError(f"{path}: model name '{name}' may only hold letters, digits, '.', '_' and '-'")
        unknown = set(table) - known
        if unknown:
            raise WeightsError(f"{path}: [models.{name}] has unknown keys: {', '.join(sorted(unknown))}")
        if "head_url" not in table:
            raise WeightsError(f"{path}: [models.{name}] needs a head_url")
        models[name] = ModelEntry(name=name, **table)
    return Registry(path=path, models=models, raw=raw)
