"""The `tr2m` command. Subcommands are imported only when run, so `tr2m --help` stays instant;
each lives in its own module and only parses options, calls the library and reports."""

from __future__ import annotations

import importlib

import click

from ..errors import Tr2mError

# name → (module, attribute). A subcommand module imports only click at its top level.
COMMANDS: dict[str, tuple[str, str]] = {
    "weights": ("tr2m_cli.cli.weights", "weights"),
    "convert": ("tr2m_cli.cli.convert", "convert"),
    "eval": ("tr2m_cli.cli.eval", "eval_command"),
    "train": ("tr2m_cli.cli.train", "train"),
    "caption": ("tr2m_cli.cli.caption", "caption"),
    "view": ("tr2m_cli.cli.view", "view"),
}


class UserError(click.ClickException):
    """A Tr2mError reaching the command line: one line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click's signature
        click.echo(f"tr2m: error: {self.format_message()}", err=True, file=file)


class Tr2mGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Tr2mError as exc:
            raise UserError(str(exc)) from None


@click.group(cls=Tr2mGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tr2m", prog_name="tr2m", message="%(prog)s %(version)s")
def cli() -> None:
    """Metric depth in metres from photos and short descriptions of them (TR2M).

    \b
    Depths, points and meshes are in metres. Models: `tr2m weights list`; every command
    takes --model NAME|DIR. Offline use: set HF_HUB_OFFLINE=1 after `tr2m weights download`.
    `tr2m COMMAND --help` for each command; the README is the manual.
    """


def main() -> None:
    cli(prog_name="tr2m")
