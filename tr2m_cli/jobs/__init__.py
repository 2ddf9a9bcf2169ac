"""The job layer shared by `tr2m convert` and `tr2m caption` (and later engines): input
discovery, output folders and their locks, decode-ahead, progress and warnings, signals, and the
summary. Fingerprints say which settings made an output, so reruns redo exactly what is stale.

Modules: `discover` (photos in, "no photos" out), `folder` (output folder checks, run lock,
stale temporaries), `decode` (decode-ahead threads), `progress` (bar, warnings, errors),
`signals` (SIGINT/SIGTERM: stop, save, then exit 130/143), `summary` (JobSummary,
summary.json), `fingerprint` (per-photo settings and their hash), `rows` (photos as plain rows
for engines that ship work to other machines).
"""

from .decode import decode_ahead
from .discover import discover_inputs, discover_photos
from .fingerprint import changed_settings, fingerprint, input_file_identity, is_current
from .folder import OutputFolder, check_output_folder
from .progress import Progress
from .signals import JobInterrupted, StopSignals
from .summary import JobSummary, jsonable, now_iso

__all__ = [
    "JobInterrupted",
    "JobSummary",
    "OutputFolder",
    "Progress",
    "StopSignals",
    "changed_settings",
    "check_output_folder",
    "decode_ahead",
    "discover_inputs",
    "discover_photos",
    "fingerprint",
    "input_file_identity",
    "is_current",
    "jsonable",
    "now_iso",
]
