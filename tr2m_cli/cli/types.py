"""Option types and command classes shared by every command: one way to read an HxW size, one
way to give an option several values, one way to end a command (exit status and interruption).

- `SIZE` reads `434x560` (also `434X560`, `434×560`, `434,560`) as (height, width);
  `SIZE_OR_NONE` also takes `none` (the aspect-keeping default).
- `multi_value_option(...)` declares an option that takes several words, as the paper's README
  types them (`--datasets nyu kitti void`), also comma-separated or repeated; commands built
  with `MultiValueCommand` / `MultiValueGroup` accept them.
- `job_exit(...)` ends a command by its summary's exit status; `interruptible(...)` turns Ctrl-C
  and SIGTERM into exit 130 / 143 with advice on how to go on.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, Iterator

import click

_SIZE = re.compile(r"^\s*(\d+)\s*[x×X,]\s*(\d+)\s*$")


def parse_hxw(text: str, what: str = "size") -> tuple[int, int]:
    """'434x560' → (434, 560); a ValueError naming `what` otherwise."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{what} {text!r}: expected HxW, e.g. 434x560")
    height, width = int(match.group(1)), int(match.group(2))
    if height < 1 or width < 1:
        raise ValueError(f"{what} {text!r}: both sides must be positive")
    return height, width


class SizeType(click.ParamType):
    """HxW in pixels → (height, width); with `allow_none`, `none` → "none" (the aspect-keeping
    size, told apart from an option not given)."""

    name = "HxW"

    def __init__(self, allow_none: bool = False) -> None:
        self.allow_none = allow_none

    def convert(self, value: Any, param, ctx) -> tuple[int, int] | None:
        if value is None or isinstance(value, tuple):
            return value
        if self.allow_none and str(value).strip().lower() == "none":
            return "none"
        try:
            return parse_hxw(value, "size")
        except ValueError as exc:
            self.fail(str(exc).removeprefix("size "), param, ctx)


SIZE = SizeType()
SIZE_OR_NONE = SizeType(allow_none=True)


class MultiValueOption(click.Option):
    """An option taking several values: `--datasets nyu kitti`, `--datasets nyu,kitti` or
    `--datasets nyu --datasets kitti` all give ('nyu', 'kitti')."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        value = super().process_value(ctx, value)
        if value is None:
            return value
        return tuple(name.strip() for item in value for name in str(item).split(",") if name.strip())


def multi_value_option(*param_decls: str, **attrs: Any):
    return click.option(*param_decls, cls=MultiValueOption, **attrs)


def _expand(args: list[str], names: set[str], stop: set[str]) -> list[str]:
    """`--opt a b --x` → `--opt a --opt b --x`: words after a multi-value option, up to the next
    option (or a subcommand name), are its values."""
    out: list[str] = []
    current = None
    for arg in args:
        if arg in names:
            current = arg
            out.append(arg)
            continue
        if current is not None and not arg.startswith("-") and arg not in stop:
            if out[-1] != current:
                out.append(current)
            out.append(arg)
            continue
        current = None
        out.append(arg)
    return out


def _multi_names(command: click.Command) -> set[str]:
    return {opt for param in command.params if isinstance(param, MultiValueOption) for opt in param.opts}


class MultiValueCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _expand(list(args), _multi_names(self), set()))


class MultiValueGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _expand(list(args), _multi_names(self), set(self.commands)))


def deprecated_alias(flag: str, replacement: str):
    """A hidden option kept so old command lines work; it warns and fills `replacement`."""

    def warn(ctx: click.Context, param, value):
        if value is not None and not ctx.resilient_parsing:
            click.echo(f"tr2m: warning: {flag} is now {replacement}", err=True)
        return value

    return warn


@contextlib.contextmanager
def interruptible(advice: str | Callable[[KeyboardInterrupt], str], *, report: bool = True) -> Iterator[None]:
    """Ctrl-C (SIGINT) and `kill` (SIGTERM) end the command with one line of advice and exit
    status 128 + the signal (130, 143). A job that saved its work says what it did first.
    `advice` may be worked out from the interruption (e.g. the checkpoint saved); `report=False`
    keeps quiet (the non-reporting processes of a distributed run)."""
    from ..jobs.signals import StopSignals

    ctx = click.get_current_context()
    with StopSignals(lambda line: click.echo(line, err=True)) as signals:
        try:
            yield
        except KeyboardInterrupt as exc:
            number = getattr(exc, "signal_number", None) or signals.received or 2
            if report:
                summary = getattr(exc, "summary", None)
                if summary is not None:
                    click.echo(summary.line(), err=True)
                name = {2: "", 15: " by SIGTERM"}.get(number, f" by signal {number}")
                text = advice(exc) if callable(advice) else advice
                click.echo(f"tr2m: interrupted{name}: {text}", err=True)
            ctx.exit(128 + number)


def job_exit(summary, *, quiet: bool) -> None:
    """Print the summary line (unless quiet) and exit with the summary's status."""
    if not quiet:
        click.echo(summary.line())
    click.get_current_context().exit(summary.exit_code)
