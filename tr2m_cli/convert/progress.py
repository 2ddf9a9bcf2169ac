"""Moved to the job layer, shared by every command: `tr2m_cli.jobs.progress`."""

from ..jobs.progress import Progress

__all__ = ["Progress"]
