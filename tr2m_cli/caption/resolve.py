"""From what a user types after `--captioner` to a model to load, the way `--model` resolves.

`--captioner` takes a folder (processor and model as `save_pretrained` writes them), a registry
name (`[captioners.NAME]` in `weights/registry.toml`) or a Hugging Face id. Ids load from the
Hugging Face cache and are fetched on first use unless HF_HUB_OFFLINE/TR2M_OFFLINE is set; then a
missing captioner is one line saying how to get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from ..weights.hub import fetch_snapshot, resolve_source
from ..weights.registry import load_registry
from .registry import DEFAULT_CAPTIONER, DEFAULT_MAX_NEW_TOKENS, captioner_entries

# What transformers needs to build a processor and a model: no TF/Flax/ONNX copies of the weights.
CAPTIONER_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]


@dataclass(frozen=True)
class CaptionerSpec:
    """A captioner to load. `name` is what outputs record ("generated: <name>"): the registry
    name, the Hugging Face id or the folder."""

    name: str
    model: str  # a Hugging Face id or an absolute folder
    prompt_style: str | None = None
    prompt: str | None = None
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    num_beams: int = 1

    @property
    def source_label(self) -> str:
        return f"generated: {self.name}"


def download_advice(spec: CaptionerSpec) -> str:
    return (
        f"run `tr2m weights download {spec.name}` on a connected machine and copy its cache (HF_HOME), "
        f"or pass --captioner DIR with a folder saved with save_pretrained"
    )


def resolve_captioner(captioner: str | Path = DEFAULT_CAPTIONER) -> CaptionerSpec:
    """A folder, a registry name or a Hugging Face id → what to load and how to prompt it."""
    text = str(captioner).strip()
    if not text:
        raise WeightsError("--captioner is empty: give a registry name, a Hugging Face id or a folder")
    folder = Path(text).expanduser()
    if folder.is_dir():
        return CaptionerSpec(name=str(folder.resolve()), model=str(folder.resolve()))
    if folder.is_file():
        raise WeightsError(f"{text}: is a file; --captioner takes a folder, a registry name or a Hugging Face id")
    registry = load_registry()
    entries = captioner_entries(registry)
    if text in entries:
        entry = entries[text]
        return CaptionerSpec(
            name=entry.name,
            model=resolve_source(entry.model),
            prompt_style=entry.prompt_style,
            prompt=entry.prompt,
            max_new_tokens=entry.max_new_tokens,
            num_beams=entry.num_beams,
        )
    model = resolve_source(text)  # a path-like text that is not a folder: "no such folder"
    if "/" not in model:
        known = ", ".join(sorted(entries)) or "none"
        raise WeightsError(
            f"unknown captioner '{text}': not a folder, not in the registry {registry.path} (captioners: {known}) "
            f"and not a Hugging Face id (owner/name)"
        )
    return CaptionerSpec(name=model, model=model)


def fetch_captioner(captioner: str | Path = DEFAULT_CAPTIONER, *, progress: bool = True, force: bool = False) -> str:
    """Download a captioner's processor and weights into the Hugging Face cache so that later runs
    work offline (`force`: fetch every file again, e.g. after a damaged download). Returns the local
    snapshot folder (a folder captioner is returned as it is)."""
    spec = resolve_captioner(captioner)
    if Path(spec.model).is_dir():
        return spec.model
    return fetch_snapshot("captioner", spec.model, progress=progress, patterns=CAPTIONER_FILE_PATTERNS, force=force)


def is_captioner_available(spec: CaptionerSpec) -> bool:
    """A folder, or an id whose files are in the Hugging Face cache (so it loads offline)."""
    if Path(spec.model).is_dir():
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(spec.model, "config.json"), str)
