"""Options shared by several commands, declared once so they read the same everywhere."""

from __future__ import annotations

import click

model_option = click.option(
    "--model",
    "model",
    default="tr2m-official",
    show_default=True,
    metavar="NAME|DIR",
    help="Registry name (see `tr2m weights list`) or model folder.",
)
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    metavar="auto|cuda|cuda:N|mps|cpu",
    help="Where to run; auto prefers CUDA, then MPS, then the CPU.",
)
precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
    default="auto",
    show_default=True,
    help="auto: bf16 on GPUs that support it, else fp16 on CUDA, fp32 on CPU.",
)
batch_size_option = click.option(
    "--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Images per forward pass."
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars; errors still go to stderr.")
captioner_option = click.option(
    "--captioner",
    default="blip-base",
    show_default=True,
    metavar="NAME|ID|DIR",
    help="Captioning model: registry name (`tr2m weights list`), Hugging Face id, or folder.",
)


def size_option(function):
    """`--size HxW` in every command that runs the network: the network input size in pixels,
    multiples of 14 (the paper's is 434x560). Eval and train keep `--input-size` as a hidden,
    deprecated spelling."""
    from .types import SIZE

    return click.option(
        "--size", type=SIZE, metavar="HxW", help="Fixed network input size, multiples of 14 (the paper's: 434x560)."
    )(function)


def workers_option(default_text: str, *, default: int | None = None):
    """`--workers N` means the same in every command: how many background workers read photos
    (threads in convert and caption, where decoding releases the GIL; data-loading processes in
    eval and train); 0 reads them in the main process."""
    return click.option(
        "--workers",
        type=click.IntRange(min=0),
        default=default,
        show_default=default is not None,
        help=f"Background workers reading photos; 0: in the main process [default: {default_text}]."
        if default is None
        else "Background workers reading photos; 0: in the main process.",
    )


# --<name>-root for each dataset, as `tr2m eval` and `tr2m train` both take them (and as the
# "pass its root (--nyu-root DIR)" errors of tr2m_cli.data name them). The values arrive as
# keyword arguments `<name>_root`; `dataset_roots(kwargs)` collects them by dataset name.
DATASET_ROOT_FLAGS = {
    "nyu": ("--nyu-root",),
    "kitti": ("--kitti-root",),
    "void": ("--void-root",),
    "c3vd": ("--c3vd-root",),
    "sunrgbd": ("--sunrgbd-root", "--sun-root"),
    "ibims": ("--ibims-root",),
    "hypersim": ("--hypersim-root",),
    "diode": ("--diode-root",),
    "simcol": ("--simcol-root",),
}


def dataset_root_options(function):
    from pathlib import Path

    for name, flags in reversed(DATASET_ROOT_FLAGS.items()):
        function = click.option(
            *flags, f"{name}_root", type=click.Path(file_okay=False, path_type=Path), default=None,
            help=f"The {name} root [DATA_ROOT/{name}, $TR2M_{name.upper()}_ROOT].",
        )(function)
    return function


def dataset_roots(options: dict) -> dict:
    """Pop the `<name>_root` values out of a command's keyword arguments: {name: path} of those given."""
    return {name: path for name in DATASET_ROOT_FLAGS if (path := options.pop(f"{name}_root", None)) is not None}
