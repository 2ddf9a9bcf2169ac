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
    help="auto: bf16 on CUDA GPUs that support it, else fp16 on CUDA; fp32 on CPU and MPS.",
)
batch_size_option = click.option(
    "--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Photos per forward pass."
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
        "--size", type=SIZE, metavar="HxW", help="Fixed network input size in pixels, multiples of 14 (the paper's: 434x560)."
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
        help=f"Background workers reading photos (data-loading processes); 0: in the main process [default: {default_text}]."
        if default is None
        else "Background workers reading photos (data-loading processes); 0: in the main process.",
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
            help=f"The {name} dataset's folder [default: DATA_ROOT/{name}, else $TR2M_{name.upper()}_ROOT].",
        )(function)
    return function


def dataset_roots(options: dict) -> dict:
    """Pop the `<name>_root` values out of a command's keyword arguments: {name: path} of those given."""
    return {name: path for name in DATASET_ROOT_FLAGS if (path := options.pop(f"{name}_root", None)) is not None}


def engine_options(workers_default_text: str, *, workers_default: int | None = None, decode_on_cpus: bool = True):
    """--workers, --engine and the Ray engine's resources, for commands that run per-photo work.

    `--workers` keeps its meaning of every command (how many background workers read photos;
    0: the main process) with `--engine local`; with `--engine ray` the workers are Ray's: N, or
    MIN,MAX for a pool that grows and shrinks with the cluster, each reading its own photos."""

    def decorate(command):
        for option in reversed([
            click.option("--workers", metavar="N|MIN,MAX", default=None if workers_default is None else str(workers_default),
                         help=f"Background workers reading photos; 0: in the main process [default: {workers_default_text}]; "
                              f"with --engine ray: Ray workers, N or MIN,MAX to autoscale [default: 1]."),
            click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                         help="local: this process; ray: workers on a Ray cluster (ray extra)."),
            click.option("--gpus-per-worker", type=click.FloatRange(min=0), metavar="F",
                         help="With --engine ray: GPUs per worker, fractions share a GPU [default: 1 if the cluster has GPUs, else 0]."),
            click.option("--ray-address", metavar="ADDRESS",
                         help="With --engine ray: the cluster to use [default: a running one (RAY_ADDRESS, `ray start`), else a local one]."),
            *([click.option("--decode-on-cpus", is_flag=True,
                            help="With --engine ray: decode photos in CPU tasks ahead of the (GPU) workers.")]
              if decode_on_cpus else []),
        ]):  # fmt: skip
            command = option(command)
        return command

    return decorate


def engine_workers(engine: str, workers: str | None, gpus_per_worker, ray_address, decode_on_cpus):
    """(photo readers for the local engine or None, RayResources for the Ray engine or None).
    The Ray options mean nothing to the local engine: say so rather than ignore them."""
    from ..errors import InputError

    given = [name for name, value in (("--gpus-per-worker", gpus_per_worker), ("--ray-address", ray_address),
             ("--decode-on-cpus", decode_on_cpus)) if value]  # fmt: skip
    if engine != "ray":
        if given:
            raise InputError(f"{', '.join(given)}: Ray engine options; add --engine ray")
        if workers is None:
            return None, None
        try:
            readers = int(workers)
        except ValueError:
            raise InputError(f"--workers {workers}: a number of photo readers (N,M ranges are for --engine ray)") from None
        if readers < 0:
            raise InputError(f"--workers {workers}: 0 or more")
        return readers, None
    from ..cluster import RayResources

    return None, RayResources(workers=workers or "1", gpus_per_worker=gpus_per_worker, address=ray_address,
                              decode_on_cpus=decode_on_cpus)  # fmt: skip


def storage_argument(text: str | None):
    """A path option that may also be a storage URL: a Path, the URL text, or None."""
    if text is None:
        return None
    from pathlib import Path

    from ..io.storage import is_url

    return text if is_url(text) else Path(text)
