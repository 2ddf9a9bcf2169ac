"""`tr2m caption`: captions for photos that have none, written where `tr2m convert` reads them.
Parses options, calls `tr2m_cli.caption.run.caption_photos`, reports."""

from __future__ import annotations

from pathlib import Path

import click

from .options import batch_size_option, captioner_option, device_option, precision_option, quiet_option, workers_option
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
@click.option("--out", "-o", type=click.Path(path_type=Path), help="One captions file (.json or .jsonl) instead of sidecars.")
@click.option("--caption-root", type=click.Path(path_type=Path), help="Write DIR/<relative path>.txt, mirroring the inputs.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Walk sub-folders.")
@click.option("--shard", metavar="K/N", help="Caption only part K of N (for N machines sharing one folder).")
@click.option("--skip-existing/--overwrite", default=True, show_default=True, help="Skip photos that already have a caption.")
@device_option
@precision_option
@batch_size_option
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="Longest caption, in tokens [default: the captioner's].")
@workers_option("2", default=2)
@click.option("--max-megapixels", type=click.FloatRange(min=0, min_open=True), default=100, show_default=True, help="Photos larger than this fail alone.")
@quiet_option
def caption(inputs, captioner, out, caption_root, recursive, shard, skip_existing, device, precision, batch_size,
            max_new_tokens, workers, max_megapixels, quiet) -> None:  # fmt: skip
    """Write a caption for each photo in PHOTOS (files, folders, @list.txt) that has none.

    \b
      tr2m caption photos                              # photos/x.jpg → photos/x.txt
      tr2m caption photos --out captions.json          # then: tr2m convert photos --caption-file captions.json
      tr2m caption photos --captioner llava-v1.6-mistral-7b --device cuda
    """
    from ..caption.run import CaptionOptions, caption_photos
    from ..io.inputs import Shard

    options = CaptionOptions(
        out=out,
        caption_root=caption_root,
        recursive=recursive,
        shard=Shard.parse(shard) if shard else None,
        overwrite=not skip_existing,
        device=device,
        precision=precision,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        decode_workers=workers,
        max_pixels=int(max_megapixels * 1e6),
        progress=not quiet,
    )
    with interruptible("captions made so far are saved; run the same command again to go on"):
        summary = caption_photos(list(inputs), options, captioner=captioner)
    job_exit(summary, quiet=quiet)
