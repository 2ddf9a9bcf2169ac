"""Reading head weights in every layout people have: the authors' release, their training
checkpoints, and ours.

- Released file (`da_s_vitl_vitl.pth`): `{"state_dict": {<51 released keys>}}`.
- Reference training checkpoint: `{"model": {"scalemap.<key>" or "module.scalemap.<key>": …}}`.
- Ours: a safetensors file with our module names, and the head sizes in its metadata.

Pickles are only ever read with `torch.load(weights_only=True)`: a checkpoint from the internet
must not be able to run code. Loading is strict: every key present, none extra, every shape right,
or one error that names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import WeightsError
from .config import HeadConfig

# Released key prefix → our module path. Longest prefixes never shadow shorter ones here because
# each released prefix ends with a dot ("crossattn.attn." does not match "crossattn.attn_cross.").
RELEASED_TO_OURS: tuple[tuple[str, str], ...] = (
    ("align_mlp.a_fc.", "text_align.linear."),
    ("crossattn.attn.", "fusion.self_attn."),
    ("crossattn.ln_1.", "fusion.norm_self."),
    ("crossattn.attn_cross.", "fusion.cross_attn."),
    ("crossattn.ln_visual.", "fusion.norm_image."),
    ("crossattn.ln_text.", "fusion.norm_text."),
    ("crossattn.ln_2.", "fusion.norm_mlp."),
    ("crossattn.mlp.c_fc.", "fusion.mlp.fc_in."),
    ("crossattn.mlp.c_proj.", "fusion.mlp.fc_out."),
    ("projects.", "trunk.project."),
    ("resize_layers.", "trunk.upsample."),
    ("layer1_rn.", "trunk.conv_in."),
    ("resConfUnit1.", "trunk.residual1."),
    ("out_conv1.", "trunk.out_conv1."),
    ("resConfUnit2.", "trunk.residual2."),
    ("out_conv2.", "trunk.out_conv2."),
    ("output_conv_scale1.", "scale_head.conv1."),
    ("output_conv_scale2.0.", "scale_head.conv2."),
    ("output_conv_scale2.2.", "scale_head.conv3."),
    ("output_conv_shift1.", "shift_head.conv1."),
    ("output_conv_shift2.0.", "shift_head.conv2."),
    ("output_conv_shift2.2.", "shift_head.conv3."),
)

TRAINING_PREFIXES = ("module.scalemap.", "scalemap.")
SAFETENSORS_CONFIG_KEY = "tr2m.head_config"


def _rename(key: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def released_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename released keys to ours; keys the map does not know keep their name (and are then
    reported as unexpected by the strict check)."""
    return {(_rename(k, RELEASED_TO_OURS) or k): v for k, v in state.items()}


def ours_to_released(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse map, to hand our weights to the reference code."""
    inverse = tuple((new, old) for old, new in RELEASED_TO_OURS)
    return {(_rename(k, inverse) or k): v for k, v in state.items()}


def _is_released_layout(state: Mapping[str, torch.Tensor]) -> bool:
    return any(_rename(k, RELEASED_TO_OURS) for k in state) and not any(
        k.startswith(("fusion.", "trunk.")) for k in state
    )


def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global it does not know: a pickle that tries to run code ends here.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        reason = f"it references {found.group(1)}" if found else "it holds objects other than tensors"
        raise WeightsError(
            f"{path}: refused to load: the file asks to run code or build objects that a plain "
            f"checkpoint never needs ({reason}); only tensor checkpoints are accepted"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {first}") from None


def _safetensors_load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            return {k: handle.get_tensor(k) for k in handle.keys()}, metadata
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file (truncated or corrupt?): {exc}") from None


def _extract_head_state(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Find the head's tensors inside whatever container the checkpoint uses."""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a dictionary of tensors, found {type(obj).__name__}")
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    elif "model" in obj and isinstance(obj["model"], Mapping):
        model = obj["model"]
        for prefix in TRAINING_PREFIXES:
            picked = {k[len(prefix) :]: v for k, v in model.items() if k.startswith(prefix)}
            if picked:
                obj = picked
                break
        else:
            obj = model
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise WeightsError(f"{path}: holds no tensors under 'state_dict' or 'model'")
    return state


def read_head_file(path: str | Path) -> tuple[dict[str, torch.Tensor], HeadConfig | None]:
    """Read head weights from any supported file; return them under our key names, with the
    head sizes when the file records them (ours does)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the file is empty")
    recorded: HeadConfig | None = None
    if _looks_like_safetensors(path):
        state, metadata = _safetensors_load(path)
        if SAFETENSORS_CONFIG_KEY in metadata:
            try:
                settings = json.loads(metadata[SAFETENSORS_CONFIG_KEY])
            except ValueError as exc:
                raise WeightsError(f"{path}: its head settings are unreadable: {exc}") from None
            recorded = head_config_from_json(settings, f"{path} (metadata {SAFETENSORS_CONFIG_KEY})")
        state = _extract_flat(state)
    else:
        state = _extract_head_state(_torch_load(path), path)
    if _is_released_layout(state):
        state = released_to_ours(state)
    return state, recorded


def _looks_like_safetensors(path: Path) -> bool:
    """By suffix first; for other names, by content (torch files are zip archives or pickles)."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return True
    if suffix in {".pt", ".pth", ".bin", ".ckpt", ".tar"}:
        return False
    with path.open("rb") as handle:
        magic = handle.read(2)
    return not (magic == b"PK" or magic[:1] == b"\x80")


def _extract_flat(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in TRAINING_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def infer_head_config(
    state: Mapping[str, torch.Tensor], attention_heads: int = 8, source: str | Path = "head weights"
) -> HeadConfig:
    """Read every width from the tensor shapes (our key names). The number of attention heads
    cannot be seen in the shapes; the released model uses 8."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise WeightsError(f"{source}: not a TR2M head: missing {_released_name(key)}")
        return tuple(state[key].shape)

    image_channels = shape("fusion.norm_self.weight")[0]
    if "text_align.linear.weight" in state:
        text_channels = shape("text_align.linear.weight")[1]
    else:
        text_channels = image_channels
    heads = attention_heads
    if image_channels % heads:
        heads = next(h for h in (8, 4, 2, 1) if image_channels % h == 0)
    return HeadConfig(
        image_channels=image_channels,
        text_channels=text_channels,
        attention_heads=heads,
        mlp_channels=shape("fusion.mlp.fc_in.weight")[0],
        projection_channels=shape("trunk.project.weight")[0],
        trunk_channels=shape("trunk.conv_in.weight")[0],
        head_channels=shape("scale_head.conv1.weight")[0],
        head_hidden_channels=shape("scale_head.conv2.weight")[0],
    )


def check_state_dict(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], source: str | Path
) -> None:
    """Raise one WeightsError naming missing, unexpected and mis-shaped keys (in released names,
    which is what people compare against)."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshaped = [
        f"{_released_name(k)} {tuple(given[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected
        if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    for label, items in (
        ("missing", [_released_name(k) for k in missing]),
        ("unexpected", [_released_name(k) for k in unexpected]),
        ("mis-shaped", misshaped),
    ):
        if items:
            shown = ", ".join(items[:6]) + (f", … ({len(items)} in all)" if len(items) > 6 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise WeightsError(f"{source}: not a TR2M head with these sizes; " + "; ".join(problems))


def _released_name(key: str) -> str:
    inverse = tuple((new, old) for old, new in RELEASED_TO_OURS)
    return _rename(key, inverse) or key


def load_head(path: str | Path, config: HeadConfig | None = None) -> "ScaleShiftHead":
    """Build a head from a weight file, strictly. Sizes come from `config`, else from the file's
    own record, else from the tensor shapes."""
    state, recorded = read_head_file(path)
    if config is None:
        config = recorded
    if config is None:
        config = infer_head_config(state, source=path)
    return head_from_state(state, config, path)


def check_weight_values(state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Refuse weights that cannot give depth: integer or bool tensors (a float head copied from
    them holds truncated values), NaN or infinite values (every depth becomes NaN)."""
    not_float = [k for k, v in state.items() if not v.is_floating_point()]
    if not_float:
        first = not_float[0]
        raise WeightsError(
            f"{source}: not a usable head: {_released_name(first)} holds {str(state[first].dtype).removeprefix('torch.')} "
            f"values, not floating point ({len(not_float)} such tensors)"
        )
    bad = [k for k, v in state.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(
            f"{source}: not a usable head: {_released_name(bad[0])} holds NaN or infinite values "
            f"({len(bad)} such tensors); the file is corrupt or from a diverged training run"
        )


# Type and range of every head setting: a model config from elsewhere must not make tr2m divide
# by zero or allocate 256 GB (`mlp_channels: 2e9`) before saying what is wrong.
HEAD_LIMITS: dict[str, tuple[int, int]] = {
    "image_channels": (1, 16384),
    "text_channels": (1, 16384),
    "attention_heads": (1, 256),
    "mlp_channels": (1, 65536),
    "projection_channels": (1, 16384),
    "trunk_channels": (1, 4096),
    "head_channels": (1, 4096),
    "head_hidden_channels": (1, 4096),
}
COEFFICIENTS = ("scale_coefficient", "shift_coefficient")


def head_config_from_json(data: Any, where: str) -> HeadConfig:
    """A HeadConfig from JSON-like settings, every field type- and range-checked; one
    WeightsError naming `where` and the field otherwise."""
    if not isinstance(data, Mapping):
        raise WeightsError(f"{where}: head settings must be an object, not {type(data).__name__}")
    known = set(HEAD_LIMITS) | set(COEFFICIENTS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise WeightsError(f"{where}: unknown head setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    for name, (low, high) in HEAD_LIMITS.items():
        if name in data:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise WeightsError(f"{where}: head {name} must be a whole number, not {value!r}")
            if not low <= value <= high:
                raise WeightsError(f"{where}: head {name} = {value} is out of range ({low}–{high})")
    for name in COEFFICIENTS:
        if name in data:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise WeightsError(
                    f"{where}: head {name} = {value!r}: must be a positive finite number (depth = "
                    f"1/(A·D_r + B) needs positive A and B)"
                )
    try:
        return HeadConfig.from_dict(dict(data))
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{where}: head settings: {exc}") from None


def head_from_state(
    state: Mapping[str, torch.Tensor], config: HeadConfig, source: str | Path
) -> "ScaleShiftHead":
    """A head of `config`'s sizes holding exactly `state` (our key names), or a WeightsError
    (wrong keys or shapes, non-float or non-finite values, non-positive coefficients)."""
    from .head import ScaleShiftHead

    head_config_from_json(config.to_dict(), str(source))
    check_weight_values(state, source)
    head = ScaleShiftHead(config)
    check_state_dict(head.state_dict(), state, source)
    head.load_state_dict(state, strict=True)
    return head


def head_bytes(head: "ScaleShiftHead") -> bytes:
    """Our file format of a head, as bytes: safetensors with our key names, float32, and the
    head sizes as metadata (what `save_head` writes)."""
    from safetensors.torch import save

    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in head.state_dict().items()}
    return save(state, metadata={SAFETENSORS_CONFIG_KEY: json.dumps(head.config.to_dict())})


def head_sha256(head: "ScaleShiftHead") -> str:
    """The sha256 of the head as `save_head` writes it: equal to the sha256 of the model
    folder's head.safetensors when the head came from one written by tr2m."""
    return hashlib.sha256(head_bytes(head)).hexdigest()


def save_head(head: "ScaleShiftHead", path: str | Path) -> None:
    """Write our format: safetensors with our key names and the head sizes as metadata."""
    with open(path, "wb") as handle:
        handle.write(head_bytes(head))
