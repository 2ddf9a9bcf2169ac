"""`tr2m eval`: reproduce the paper's tables on its nine datasets."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import click

from .options import (
    batch_size_option, dataset_root_options, device_option, model_option, quiet_option, workers_option,
)
from .types import SIZE_OR_NONE, MultiValueCommand, deprecated_alias, interruptible, multi_value_option


def _check_writable(folder: Path) -> None:
    """Fail before the (long) run, not after it."""
    from ..errors import OutputError
    from ..io.atomic import write_bytes

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".tr2m-write-check"
        write_bytes(probe, b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write results here ({exc.strerror or exc})") from None


def _names(values: tuple[str, ...]) -> list[str]:
    return [name for value in values for name in value.replace(",", " ").split()]


@click.command("eval", cls=MultiValueCommand)
@multi_value_option("--datasets", "in_domain", metavar="NAME... | all", help="Sets to evaluate: nyu kitti void c3vd (or any of the nine); all = the four in-domain sets.")
@multi_value_option("--zero-shot", "zero_shot", metavar="NAME... | all", help="Zero-shot sets: sun ibims hypersim diode simcol; all = those found (absent ones are skipped).")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), help="Folder holding nyu/ kitti/ void/ c3vd/ sunrgbd/ ibims/ hypersim/ diode/ simcol/ [default: $TR2M_DATA_ROOT].")
@dataset_root_options
@click.option("--kitti-gt-root", type=click.Path(file_okay=False, path_type=Path), help="KITTI's annotated depth (data_depth_annotated), if not under the KITTI folder.")
@click.option("--captions", type=click.Path(exists=True, path_type=Path), help="The paper's caption folder (text_all/), a per-image tree, a caption file or a one-line-per-image file [default: $TR2M_CAPTIONS, else captions/ in each dataset's folder].")
@click.option("--dataset-captions", "dataset_captions", multiple=True, metavar="NAME=PATH", help="Captions for one set (repeatable); wins over --captions.")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True, help="Split of the in-domain sets (zero-shot sets have only test).")
@model_option
@device_option
@click.option("--precision", type=click.Choice(["fp32", "auto", "fp16", "bf16"]), default="fp32", show_default=True,
              help="fp32 is what the authors evaluated with and reproduces the paper's tables; auto/fp16/bf16 are faster on GPUs.")
@batch_size_option
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the first N images of each set (a quick check; not comparable with the paper).")
@click.option("--flip-tta", is_flag=True, help="Average with the prediction on the mirrored photo (not used by the paper).")
@click.option("--min-depth", type=float, metavar="METRES", help="Override the evaluation range's minimum, in metres (pixels outside are not scored).")
@click.option("--max-depth", type=float, metavar="METRES", help="Override the evaluation range's maximum, in metres (pixels outside are not scored).")
@click.option("--crop", type=click.Choice(["eigen", "garg", "kb", "none"]), help="Override the evaluation crop.")
@click.option("--size", "input_size", type=SIZE_OR_NONE, metavar="HxW|none", help="Override the network input size in pixels, multiples of 14 (none: keep the aspect ratio).")
@click.option("--input-size", "old_input_size", type=SIZE_OR_NONE, hidden=True, callback=deprecated_alias("--input-size", "--size"))
@click.option("--full-ground-truth", is_flag=True, help="KITTI: compare on the full-size ground truth (BTS), not on the 352x1216 window (the authors' code).")
@click.option("--sun-depth", type=click.Choice(["auto", "rotated", "mm", "reference"]), default="auto", show_default=True, help="SUN RGB-D depth encoding; reference = the authors' v/10000.")
@click.option("--match-reference", is_flag=True, help="Feed iBims-1 and DIODE as the authors' code does (iBims photos not ImageNet-normalised, DIODE's validity mask unused), to match their published rows.")
@click.option("--c3vd-caption", metavar="TEMPLATE", help="C3VD caption template ({part}, {texture}, {sequence}).")
@click.option("--simcol-caption", metavar="TEMPLATE|reference", help="SimCol caption template ({colon}, {sequence}); reference = the authors' one fixed caption.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder [default: tr2m-eval-<date>-<time>].")
@click.option("--save-predictions", is_flag=True, help="Save each prediction as float32 metres (.npy) under OUT/predictions/.")
@click.option("--previews", type=click.IntRange(min=0), default=0, metavar="EVERY", help="Save a photo | ground truth | prediction PNG for every EVERY-th image under OUT/previews/ [default: 0, none].")
@workers_option("0 on CPU, 4 on CUDA")
@quiet_option
def eval_command(in_domain, zero_shot, data_root, kitti_gt_root, captions, dataset_captions, split, model, device, precision, batch_size,
                 limit, flip_tta, min_depth, max_depth, crop, input_size, old_input_size, full_ground_truth, sun_depth,
                 match_reference, c3vd_caption,
                 simcol_caption, out, save_predictions, previews, workers, quiet, **roots) -> None:
    """Score a model on the paper's datasets under the paper's protocol, beside its published numbers.

    \b
    tr2m eval --datasets nyu kitti void c3vd --data-root D --captions D/text_all
    tr2m eval --zero-shot sun ibims --data-root D
    tr2m eval --zero-shot all                  (sets without a root are skipped)

    Each set is read in its native layout from --<name>-root, else DATA_ROOT/<folder> (nyu/,
    kitti/, …, sunrgbd/), else $TR2M_<NAME>_ROOT; see the README for the layouts. Writes OUT/results.json (protocol, model,
    means), OUT/per_image.csv and OUT/table.txt. Depths and RMSE are in metres (C3VD/SimCol RMSE
    shown in mm, as the paper reports them). Every sample's files are checked before the model
    loads; one that cannot be read is reported as failed and the others are scored (exit 1).
    Rows whose protocol differs from the one behind the published numbers are marked †.
    """
    from ..errors import DatasetError
    from ..evaluate.report import describe_dataset, describe_model, format_table
    from ..evaluate.suite import (
        EvalOptions, check_files, describe_problems, open_eval_datasets, protocol_for, run_evaluation, select_datasets,
    )

    from ..data.protocol import EvalProtocol

    input_size = input_size if input_size is not None else old_input_size
    if input_size is not None:
        EvalProtocol(input_size=input_size)  # a bad size fails before any dataset is read
    if not in_domain and not zero_shot:
        raise click.UsageError("name the datasets: --datasets nyu kitti void c3vd and/or --zero-shot sun ibims hypersim diode simcol (or all)")
    selection = select_datasets({"in-domain": _names(in_domain), "zero-shot": _names(zero_shot)})
    options = {"sunrgbd": {"depth_encoding": sun_depth}, "kitti": {"gt_root": kitti_gt_root}}
    dataset_overrides = {}
    if match_reference:
        options["diode"] = {"apply_mask": False}
        dataset_overrides["ibims"] = {"normalize": False}
    if c3vd_caption:
        options["c3vd"] = {"caption_template": c3vd_caption}
    if simcol_caption:
        options["simcol"] = {"caption_template": simcol_caption}
    from .options import dataset_roots

    roots = dataset_roots(roots)
    per_dataset = {}
    for item in dataset_captions:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"'{item}': expected NAME=PATH, e.g. diode=diode_captions.json", param_hint="--dataset-captions")
        per_dataset[name] = Path(path)
    datasets, skipped = open_eval_datasets(
        selection, split=split, data_root=data_root, roots=roots, captions=captions, options=options,
        dataset_captions=per_dataset,
    )
    for notice in skipped:
        click.echo(f"tr2m: skipping {notice}", err=True)
    if not datasets:
        raise DatasetError("none of the selected datasets was found; pass --data-root D (holding nyu/, sunrgbd/, …) or --<name>-root DIR")

    overrides = {
        key: value
        for key, value in (("min_depth", min_depth), ("max_depth", max_depth), ("crop", crop), ("input_size", input_size))
        if value is not None
    }
    if full_ground_truth:
        overrides["crop_ground_truth"] = False
    click.echo("Protocol (metres):")
    for dataset in datasets:
        click.echo("  " + describe_dataset(dataset, protocol_for(dataset, overrides, dataset_overrides), limit))
        for note in [*dataset.notes, dataset.captions_source.notice]:
            if note:
                click.echo(f"    note: {note}")
    problems = check_files(datasets, limit)  # before the model loads: say now what cannot be read
    for dataset in datasets:
        if dataset.name in problems:
            total = len(dataset) if limit is None else min(limit, len(dataset))
            for line in describe_problems(dataset.name, problems[dataset.name], total):
                click.echo(f"tr2m: {line}", err=True)

    out = out or Path(f"tr2m-eval-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    _check_writable(out)

    from ..weights.load import load_model
    from ..weights.resolve import resolve_model

    folder = resolve_model(model, progress=not quiet)
    tr2m = load_model(folder, device=device, precision=precision, progress=not quiet)
    if workers is None:
        workers = 4 if tr2m.device.type == "cuda" else 0
    settings = EvalOptions(
        overrides=overrides, dataset_overrides=dataset_overrides, batch_size=batch_size, limit=limit, flip_tta=flip_tta,
        num_workers=workers, save_predictions=save_predictions, preview_every=previews, progress=not quiet,
    )
    with interruptible(f"the finished images are in {out / 'results.json'} and {out / 'per_image.csv'}"):
        results = run_evaluation(
            tr2m, datasets, out, settings, model_info=describe_model(tr2m, folder), command=["tr2m", *sys.argv[1:]],
            echo=lambda line: click.echo(line, err=True), skipped=skipped,
        )
    click.echo("")
    click.echo(format_table(results, skipped), nl=False)
    click.echo(f"\nWrote {out / 'results.json'}, {out / 'per_image.csv'} and {out / 'table.txt'}.")
    failed = sum(len(result.failed) for result in results)
    if failed:
        click.echo(f"tr2m: {failed} image(s) could not be scored (status 'failed' in {out / 'per_image.csv'})", err=True)
        sys.exit(1)
