"""Exceptions meant for users.

Every failure a user can cause (a bad file, a missing model, an odd dataset layout) raises one of
these with a message that names the file and the problem in one line. The CLI catches them once
and prints the message; library users catch them like any other exception.
"""

from __future__ import annotations


class Tr2mError(Exception):
    """Base of every error whose message is written for a user."""


class InputError(Tr2mError):
    """An input image, caption or argument that cannot be used."""


class WeightsError(Tr2mError):
    """A model, checkpoint or encoder that cannot be found, downloaded or loaded."""


class DatasetError(Tr2mError):
    """A dataset root that is missing or not laid out as expected."""


class OutputError(Tr2mError):
    """An output location that cannot be written."""


class MissingExtraError(Tr2mError):
    """A feature needs an optional dependency (an extra: `pip install 'tr2m[NAME]'`) that is not installed."""


class DisplayError(Tr2mError):
    """A window was asked for where there is no display to show it."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a library's multi-line or empty message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
