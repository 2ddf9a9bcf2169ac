"""`tr2m caption`: captions for photos that have none, written where `tr2m convert` reads them.
Parses options, calls `tr2m_cli.caption.run.caption_photos`, reports."""

from __future__ import annotations

import click

from .options import (
    batch_size_option,
    captioner_option,
    device_option,
    engine_options,
    engine_workers,
    precision_option,
    quiet_option,
    storage_argument,
)
from .types import interruptible, job_exit

EPILOG = """\b
Captions go where `tr2m convert` finds them:
  default            <stem>.txt beside each photo (first line)
  --caption-root D   D/<relative path>.txt, a tree mirroring the inputs
  --out F.json       one mapping photo → caption, for convert --caption-file F.json
  --out F.jsonl      one {"image", "caption"} per line; with --shard K/N each machine
                     writes F-K-of-N.jsonl, and `cat` joins them
A photo that already has a caption (there, or a <stem>.txt beside it) is skipped, so a rerun
resumes; --overwrite makes new ones (a captions file gets the others' captions copied in, so it
is complete). Several runs may write one captions file at once; none loses captions. A summary
goes beside the captions (F.summary.json, D/summary.json, tr2m-caption-summary.json).
Captioners: `tr2m weights list`. Exit status: 0 all done, 1 some photos failed, 2 usage or setup
error, 130/143 stopped by Ctrl-C/SIGTERM (captions made so far are saved).
"""


@click.command(epilog=EPILOG)
@click.argument("inputs", nargs=-1, required=True, metavar="PHOTOS...")
@captioner_option
@click.option("--out", "-o", metavar="FILE|URL", help="One captions file (.json or .jsonl) instead of sidecars.")
@click.option("--caption-root", metavar="DIR|URL", help="Write DIR/<relative path>.txt, mirroring the inputs.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Walk sub-folders.")
@click.option("--shard", metavar="K/N", help="Caption only part K of N, by a hash of each path (N machines sharing one folder).")
@click.option("--skip-existing/--overwrite", default=True, show_default=True, help="Skip photos that already have a caption; --overwrite makes new ones.")
@device_option
@precision_option
@batch_size_option
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="Longest caption, in tokens [default: the captioner's].")
@engine_options("2", decode_on_cpus=False)
@click.option("--max-megapixels", type=click.FloatRange(min=0, min_open=True), default=100, show_default=True, metavar="MP", help="Photos larger than this fail alone, before they are decoded.")
@quiet_option
def caption(inputs, captioner, out, caption_root, recursive, shard, skip_existing, device, precision, batch_size,
            max_new_tokens, workers, engine, gpus_per_worker, ray_address, max_megapixels, quiet) -> None:  # fmt: skip
    """Write a caption for each photo in PHOTOS (files, folders, @list.txt) that has none.

    \b
      tr2m caption photos                              # photos/x.jpg → photos/x.txt
      tr2m caption photos --out captions.json          # then: tr2m convert photos --caption-file captions.json
      tr2m caption photos --captioner llava-v1.6-mistral-7b --device cuda
      tr2m caption s3://lab/frames --out s3://lab/captions.jsonl --engine ray --workers 8
    """
    from ..caption.run import CaptionOptions, caption_photos
    from ..io.inputs import Shard

    workers, ray = engine_workers(engine, workers, gpus_per_worker, ray_address, False)

    options = CaptionOptions(
        out=storage_argument(out),
        caption_root=storage_argument(caption_root),
        recursive=recursive,
        shard=Shard.parse(shard) if shard else None,
        overwrite=not skip_existing,
        device=device,
        precision=precision,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        **({"decode_workers": workers} if workers is not None else {}),
        max_pixels=int(max_megapixels * 1e6),
        progress=not quiet,
    )
    with interruptible("captions made so far are saved; run the same command again to go on"):
        summary = caption_photos(list(inputs), options, captioner=captioner, ray=ray)
    job_exit(summary, quiet=quiet)
