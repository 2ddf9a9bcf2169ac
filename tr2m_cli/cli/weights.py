"""`tr2m weights`: list, download, locate and import model weights."""

from __future__ import annotations

from pathlib import Path

import click

from .options import quiet_option
from .types import interruptible


@click.group()
def weights() -> None:
    """Named models, the download cache, and model folders.

    \b
    A model is a folder: tr2m.json (encoders, sizes, units, provenance) + head.safetensors.
    Our files are cached under $TR2M_HOME (default: the platform cache folder); encoders
    under the Hugging Face cache ($HF_HOME). To work offline, run `tr2m weights download NAME`
    on a connected machine, copy both caches, and set HF_HUB_OFFLINE=1.
    """


@weights.command("list")
def list_models() -> None:
    """Registry models and captioners, and whether each is in the cache."""
    from ..caption.registry import captioner_entries
    from ..caption.resolve import is_captioner_available, resolve_captioner
    from ..weights.registry import load_registry
    from ..weights.resolve import cached_model_folder
    from ..weights.folder import is_model_folder

    registry = load_registry()
    captioners = captioner_entries(registry)
    if not registry.models and not captioners:
        click.echo(f"no models in {registry.path}")
        return
    width = max(len(name) for name in [*registry.models, *captioners])
    for name, entry in sorted(registry.models.items()):
        state = "cached" if is_model_folder(cached_model_folder(name)) else "not downloaded"
        click.echo(f"{name:<{width}}  {state:<14}  {entry.description}")
    if captioners:
        click.echo("\ncaptioners (tr2m caption --captioner NAME):")
    for name, entry in sorted(captioners.items()):
        state = "cached" if is_captioner_available(resolve_captioner(name)) else "not downloaded"
        click.echo(f"{name:<{width}}  {state:<14}  {entry.description}")


@weights.command()
@click.argument("name")
@click.option("--head-only", is_flag=True, help="Fetch the head but not the three encoders (models only).")
@click.option("--force", is_flag=True, help="Download again even if cached (a model's head; all of a captioner's files).")
@quiet_option
def download(name: str, head_only: bool, force: bool, quiet: bool) -> None:
    """Fetch model NAME (head and encoders), or captioner NAME, so later runs need no network."""
    from ..caption.registry import find_captioner
    from ..weights.registry import load_registry
    from ..weights.resolve import download_model

    with interruptible("the part downloaded so far is kept; run the same command again to resume"):
        if name not in load_registry().models and find_captioner(name) is not None:
            from ..caption.resolve import fetch_captioner
            from ..errors import InputError

            if head_only:
                raise InputError(f"--head-only: {name} is a captioner, which has no TR2M head; drop the flag")
            click.echo(fetch_captioner(name, progress=not quiet, force=force))
            return
        folder = download_model(name, encoders=not head_only, progress=not quiet, force=force)
    click.echo(str(folder))


@weights.command()
@click.argument("name")
def path(name: str) -> None:
    """Print the model folder of NAME (a registry name or a folder); exit status 2 if it is not downloaded."""
    from ..weights.resolve import resolve_model

    click.echo(str(resolve_model(name, download=False)))


@weights.command("import")
@click.argument("head_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder to write.")
@click.option("--image-encoder", metavar="ID|DIR", help="DINOv2 id or folder [default: facebook/dinov2-large].")
@click.option("--text-encoder", metavar="ID|DIR", help="CLIP id or folder [default: openai/clip-vit-large-patch14].")
@click.option(
    "--depth-model", metavar="ID|DIR", help="Depth Anything id or folder [default: LiheYoung/depth-anything-small-hf]."
)
@click.option("--name", help="Model name recorded in tr2m.json [default: the folder's name].")
@click.option(
    "--attention-heads",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Heads of the fusion attention (not visible in the weights).",
)
@click.option("--token-budget", type=click.IntRange(min=1), metavar="TOKENS", help="The model's default network input, in patch tokens per photo [default: 1240].")
@click.option("--force", is_flag=True, help="Replace a model already in --out.")
def import_(
    head_file: Path,
    out: Path,
    image_encoder: str | None,
    text_encoder: str | None,
    depth_model: str | None,
    name: str | None,
    attention_heads: int,
    token_budget: int | None,
    force: bool,
) -> None:
    """Turn HEAD_FILE into a model folder.

    HEAD_FILE may be the authors' release (da_s_vitl_vitl.pth), a reference training checkpoint
    (keys under "model" with a scalemap. prefix), or our head.safetensors. Head sizes are read from
    the file, so heads of other widths import as well. Pickled files are read with
    weights_only=True: a file that tries to run code is refused.
    """
    from ..weights.folder import import_head

    folder = import_head(
        head_file,
        out,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        depth_model=depth_model,
        name=name,
        attention_heads=attention_heads,
        token_budget=token_budget,
        overwrite=force,
    )
    click.echo(str(folder))
