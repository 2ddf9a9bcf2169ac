"""A model is a folder: `tr2m.json` (what to build) plus `head.safetensors` (the trained head).

    my-model/
      tr2m.json          encoders (ids, or paths relative to this folder), head sizes,
                         coefficients, units, provenance
      head.safetensors   the head's weights, our key names, sizes also in its metadata

Encoders may live inside the folder (e.g. `encoders/dinov2/` as written by `save_pretrained`),
which makes a folder that works on a machine with no network at all.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import Tr2mError, WeightsError
from ..io.atomic import atomic_path, write_json
from ..model.config import PATCH_SIZE, UNIT_TO_METRES, EncoderSources, HeadConfig, ModelSpec

if TYPE_CHECKING:
    from ..model.head import ScaleShiftHead

CONFIG_NAME = "tr2m.json"
HEAD_NAME = "head.safetensors"
FORMAT = "tr2m-model"
FORMAT_VERSION = 1


def is_model_folder(path: str | Path) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def spec_to_json(spec: ModelSpec) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "units": spec.units,
        "head": {"weights": spec.head_weights, **spec.head.to_dict()},
        "encoders": asdict(spec.encoders),
        "input": {"token_budget": spec.token_budget, "patch_size": PATCH_SIZE},
        "domain_units": dict(spec.domain_units),
        "provenance": dict(spec.provenance),
    }


def read_model_folder(path: str | Path) -> ModelSpec:
    """The ModelSpec of a model folder; every field of its tr2m.json type- and range-checked,
    with one WeightsError naming the file and the field."""
    from ..io.files import read_capped

    path = Path(path)
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsError(
            f"{path}: not a tr2m model folder (no {CONFIG_NAME}); make one with "
            f"`tr2m weights import HEAD_FILE --out {path}`"
        )
    try:
        data = json.loads(read_capped(config_path, 1 << 20, "the model config").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{config_path}: not valid JSON ({exc})") from None
    except (OSError, Tr2mError) as exc:
        raise WeightsError(f"{config_path}: cannot be read ({exc})") from None
    return spec_from_json(data, config_path, default_name=path.name)


def _field(data: Mapping[str, Any], key: str, kind: type | tuple, where: Path, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        names = {str: "text", int: "a whole number", dict: "an object"}
        wanted = names.get(kind, getattr(kind, "__name__", str(kind)))
        raise WeightsError(f"{where}: field {key!r} must be {wanted}, not {value!r}")
    return value


def spec_from_json(data: Any, where: Path, default_name: str = "model") -> ModelSpec:
    """A ModelSpec from a parsed tr2m.json, checked field by field."""
    from ..model.checkpoint import head_config_from_json

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(f"{where}: not a tr2m model config (\"format\" must be \"{FORMAT}\")")
    version = data.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise WeightsError(f"{where}: field 'format_version' must be a whole number, not {version!r}")
    if version > FORMAT_VERSION:
        raise WeightsError(f"{where}: written by a newer tr2m (format {version}); upgrade tr2m")
    if "head" not in data:
        raise WeightsError(f"{where}: malformed model config: field 'head' is missing")
    head = dict(_field(data, "head", dict, where, {}) or {})
    weights = head.pop("weights", HEAD_NAME)
    if not isinstance(weights, str) or not weights or Path(weights).is_absolute() or ".." in Path(weights).parts:
        raise WeightsError(f"{where}: field 'head.weights' must be a file name inside the model folder, not {weights!r}")
    units = _field(data, "units", str, where, "metres")
    domain_units = _field(data, "domain_units", dict, where, {}) or {}
    for label, unit in [("units", units), *((f"domain_units.{k}", v) for k, v in domain_units.items())]:
        if unit not in UNIT_TO_METRES:
            raise WeightsError(f"{where}: field {label!r}: unknown unit {unit!r} (known: {', '.join(UNIT_TO_METRES)})")
    encoders = _field(data, "encoders", dict, where, None)
    if encoders is None:
        raise WeightsError(f"{where}: malformed model config: field 'encoders' is missing")
    known_encoders = set(EncoderSources.__dataclass_fields__)
    for key, value in encoders.items():
        if key not in known_encoders:
            raise WeightsError(f"{where}: unknown encoder {key!r} (known: {', '.join(sorted(known_encoders))})")
        if not isinstance(value, str) or not value.strip():
            raise WeightsError(f"{where}: field 'encoders.{key}' must be a Hugging Face id or a folder, not {value!r}")
    model_input = _field(data, "input", dict, where, {}) or {}
    budget = model_input.get("token_budget", ModelSpec.token_budget)
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= 100_000:
        raise WeightsError(f"{where}: field 'input.token_budget' must be a whole number in 1–100000, not {budget!r}")
    name = _field(data, "name", str, where, None) or default_name
    provenance = _field(data, "provenance", dict, where, {}) or {}
    return ModelSpec(
        name=name,
        head=head_config_from_json(head, f"{where}: field 'head'"),
        encoders=EncoderSources(**encoders),
        head_weights=weights,
        token_budget=budget,
        units=units,
        domain_units=dict(domain_units),
        provenance=provenance,
    )


def _encoder_reference(source: str | Path, out: Path) -> str:
    """Folders inside the model folder are stored relative to it (the folder can move); other
    folders as absolute paths; anything else is a Hugging Face id and stored as given."""
    candidate = Path(source).expanduser()
    if candidate.is_dir():
        resolved = candidate.resolve()
        try:
            return resolved.relative_to(out.resolve()).as_posix()
        except ValueError:
            return str(resolved)
    return str(source)


def _check_destination(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise WeightsError(f"{out}: exists and is not a folder")
    if is_model_folder(out) and not overwrite:
        raise WeightsError(f"{out}: already holds a model (use --force to replace it)")


def save_model_folder(
    head: "ScaleShiftHead",
    out: str | Path,
    *,
    image_encoder: str | Path | None = None,
    text_encoder: str | Path | None = None,
    depth_model: str | Path | None = None,
    name: str | None = None,
    token_budget: int | None = None,
    domain_units: Mapping[str, str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a head module as a model folder (head sizes from its config; encoders default to
    the official ids). Training exports and tiny test models come here directly."""
    from ..model.checkpoint import save_head

    out = Path(out)
    _check_destination(out, overwrite)
    defaults = EncoderSources()
    out.mkdir(parents=True, exist_ok=True)
    spec = ModelSpec(
        name=name or out.name,
        head=head.config,
        encoders=EncoderSources(
            image=_encoder_reference(image_encoder or defaults.image, out),
            text=_encoder_reference(text_encoder or defaults.text, out),
            relative_depth=_encoder_reference(depth_model or defaults.relative_depth, out),
        ),
        token_budget=token_budget or ModelSpec.token_budget,
        domain_units=dict(domain_units or {}),
        provenance={
            "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "tr2m_version": _version(),
            **dict(provenance or {}),
        },
    )
    with atomic_path(out / HEAD_NAME) as temp:
        save_head(head, temp)
    write_json(out / CONFIG_NAME, spec_to_json(spec))
    return out


def import_head(
    head_file: str | Path,
    out: str | Path,
    *,
    image_encoder: str | Path | None = None,
    text_encoder: str | Path | None = None,
    depth_model: str | Path | None = None,
    name: str | None = None,
    attention_heads: int = 8,
    token_budget: int | None = None,
    domain_units: Mapping[str, str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Turn a head file (the authors' release, a reference training checkpoint, or ours) into a
    model folder. Head sizes are read from the file; encoders default to the official ids."""
    from ..model.checkpoint import head_from_state, infer_head_config, read_head_file
    from .download import sha256_of

    head_file, out = Path(head_file), Path(out)
    _check_destination(out, overwrite)  # before reading a 76 MB file for nothing
    state, recorded = read_head_file(head_file)
    config = recorded or infer_head_config(state, attention_heads=attention_heads, source=head_file)
    head = head_from_state(state, config, head_file)  # strict: every key and shape checked
    return save_model_folder(
        head,
        out,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        depth_model=depth_model,
        name=name,
        token_budget=token_budget,
        domain_units=domain_units,
        provenance={"head_file": head_file.name, "head_file_sha256": sha256_of(head_file), **dict(provenance or {})},
        overwrite=overwrite,
    )


def _version() -> str:
    from .. import __version__

    return __version__
