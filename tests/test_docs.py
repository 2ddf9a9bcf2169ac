"""The documentation against the code: every option the docs give a command exists in that
command's parser, every extra they name is in pyproject.toml (and the README's table lists them
all), every internal link lands on a heading, and the commands CI runs are the README's.

Nothing here loads a model or runs a command: the parsers are read, not invoked (about a second)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest

from tr2m_cli.cli import cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md", REPO / "examples" / "README.md"]

# Programs other than tr2m whose options the docs show (pip, torchrun, srun, Ray's CLI, …).
OTHER_PROGRAMS = ("pip", "python", "torchrun", "srun", "ray", "git", "unshare", "colmap", "#")
COMMAND = re.compile(
    r"(?:^|(?<=[\s;&|(]))(?:tr2m|-m tr2m_cli)\s+(caption|convert|eval|train|view|weights)\b"
    r"(?:\s+(export|list|download|path|import)\b)?"
)
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9_-]*)")


def snippets(text: str):
    """Code as the docs show it: each logical line of a code block (fenced, or indented by four
    spaces; `\\` continues a line; `# comments` cut), and each inline `code` span elsewhere."""
    in_fence, pending = False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence or (line.startswith("    ") and "`" not in line):
            pending += line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            code, pending = pending, ""
            if not code.startswith("#"):
                code = re.split(r"\s#\s?", code)[0]
            yield code
        else:
            yield from re.findall(r"`([^`\n]+)`", line)


def commands() -> dict[tuple[str, ...], click.Command]:
    """Every command and sub-command of `tr2m`, by its words."""
    found: dict[tuple[str, ...], click.Command] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        found[path] = command
        if isinstance(command, click.Group):
            context = click.Context(command)
            for name in command.list_commands(context):
                walk(command.get_command(context, name), (*path, name))

    walk(cli, ())
    return found


def option_names(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(name for name in [*param.opts, *param.secondary_opts] if name.startswith("--"))
    return names


def command_uses(text: str):
    """(command words, option) for each option a doc gives after `tr2m COMMAND`; and
    (None, option) for options shown on their own (`--workers N`), not after another program."""
    for code in snippets(text):
        matches = list(COMMAND.finditer(code))
        if not matches:
            if not code.lstrip().startswith(OTHER_PROGRAMS):
                for option in OPTION.findall(code):
                    yield None, option
            continue
        for match, following in zip(matches, [*matches[1:], None]):
            words = tuple(word for word in match.groups() if word)
            for option in OPTION.findall(code[match.end() : following.start() if following else None]):
                yield words, option


def doc_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def script_options(script: str) -> set[str]:
    source = (REPO / "benchmarks" / f"{script}.py").read_text()
    return set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", source))


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_every_option_the_docs_give_a_command_exists_in_its_parser(doc):
    tree = commands()
    everywhere = set().union(*(option_names(command) for command in tree.values()))
    if doc.parent.name == "benchmarks":  # there `--repeats` on its own is a benchmark script's option
        everywhere |= set().union(*(script_options(path.stem) for path in doc.parent.glob("*.py")))
    wrong = []
    for words, option in command_uses(doc.read_text()):
        if words is None:
            if option not in everywhere:
                wrong.append(f"{option} (no tr2m command has it)")
        elif option not in option_names(tree[words]):
            wrong.append(f"tr2m {' '.join(words)} {option}")
    assert not wrong, f"{doc_id(doc)} names options the parsers do not have: {sorted(set(wrong))}"


def test_every_option_a_help_text_names_exists():
    """Help strings and epilogs name options (`--fy defaults to it`, `--outputs render`): real ones."""
    tree = commands()
    everywhere = set().union(*(option_names(command) for command in tree.values()))
    wrong = []
    for words, command in tree.items():
        text = command.get_help(click.Context(command, info_name=" ".join(["tr2m", *words])))
        for line in text.splitlines():  # `torchrun --nproc_per_node 8 -m tr2m_cli train`: torchrun's
            shown = line[COMMAND.search(line).start() :] if COMMAND.search(line) else line
            wrong += [f"tr2m {' '.join(words)}: {option}" for option in OPTION.findall(shown) if option not in everywhere]
    assert not wrong


def test_the_checker_sees_commands_in_code_blocks_and_inline_code():
    text = "```bash\ntorchrun --nproc_per_node 8 -m tr2m_cli train --datasets nyu \\\n    --bogus 1   # --ignored\n```\n" \
           "Use `tr2m weights download NAME --force` or `--workers 2`; `pip install --index-url x`.\n"  # fmt: skip
    assert list(command_uses(text)) == [
        (("train",), "--datasets"), (("train",), "--bogus"), (("weights", "download"), "--force"), (None, "--workers"),
    ]  # fmt: skip


def test_benchmark_commands_use_options_their_scripts_have():
    wrong = []
    for code in snippets((REPO / "benchmarks" / "README.md").read_text()):
        for script, rest in re.findall(r"benchmarks/(\w+)\.py(.*)", code):
            wrong += [f"{script}.py {option}" for option in OPTION.findall(rest) if option not in script_options(script)]
    assert not wrong, f"benchmarks/README.md gives scripts options they do not parse: {wrong}"


def pyproject_extras() -> dict[str, list[str]]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def extras_table() -> dict[str, str]:
    """The README's extras table: extra name → its 'brings' cell."""
    text = README.read_text()
    table = text[text.index("**Extras**") :].split("\n\n")[1]
    rows = {}
    for line in table.splitlines()[2:]:
        name_cell, brings = line.split(" | ")[0].strip("| "), line.split(" | ")[1]
        for name in re.findall(r"`([^`]+)`", name_cell):
            rows[name] = brings
    return rows


def test_the_readme_extras_table_lists_exactly_the_extras_of_pyproject():
    assert set(extras_table()) == set(pyproject_extras())


@pytest.mark.parametrize("extra", ["dev", "cluster-tests"])
def test_the_readme_says_which_extras_an_umbrella_extra_brings(extra):
    included = {name for requirement in pyproject_extras()[extra] for name in
                re.findall(r"^tr2m\[([^\]]+)\]", requirement) for name in name.split(",")}  # fmt: skip
    named = set(re.findall(r"`([^`]+)`", extras_table()[extra]))
    assert named == included


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_every_pip_install_of_an_extra_names_a_real_extra(doc):
    extras = set(pyproject_extras())
    asked = [name.strip() for group in re.findall(r"""pip install ["']?(?:\.|tr2m)\[([^\]]+)\]""", doc.read_text())
             for name in group.split(",")]  # fmt: skip
    assert set(asked) <= extras, f"{doc_id(doc)}: {sorted(set(asked) - extras)} are not extras"


def test_the_readme_lists_every_output_kind_and_the_default():
    from tr2m_cli.convert.options import DEFAULT_OUTPUTS, OUTPUT_KINDS

    text = README.read_text()
    assert f"`--outputs {','.join(OUTPUT_KINDS)}`" in text
    assert f"default `{','.join(DEFAULT_OUTPUTS)}`" in text
    table = text[text.index("| file (`--outputs` name) | content |") :].split("\n\n")[0]
    assert set(re.findall(r"^\| `[^`]+` \(`(\w+)`\)", table, flags=re.M)) == set(OUTPUT_KINDS)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but - and _ dropped, spaces → -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_every_internal_link_lands_on_a_file_and_heading(doc):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
            broken.append(target)
    assert not broken, f"{doc_id(doc)}: links to nothing: {broken}"


def fenced_block_after(heading: str) -> list[str]:
    text = README.read_text()
    section = text[text.index(heading) :]
    block = section[section.index("```") :].split("```")[1]
    return [line.split("  #")[0].strip() for line in block.splitlines()[1:] if line.strip()]


def test_the_quick_start_is_two_commands_on_the_shipped_examples():
    assert fenced_block_after("## Install and quick start") == [
        "pip install .",
        "tr2m convert examples --caption-file examples/captions.json",
    ]
    import json

    captions = json.loads((REPO / "examples" / "captions.json").read_text())
    photos = {path.relative_to(REPO / "examples").as_posix() for path in (REPO / "examples").rglob("*")
              if path.suffix.lower() in (".jpg", ".png")}  # fmt: skip
    assert set(captions) == photos and len(photos) == 4  # "the four photos in examples/"


def test_ci_runs_the_readmes_development_commands():
    """CI runs the README's install and test lines (quietly: `python -m pip … -q`, `pytest -q`)."""
    install, test = fenced_block_after("## Development")

    def plain(line: str) -> str:
        return re.sub(r"\s+", " ", line.replace("python -m pip", "pip").replace(" -q", "")).strip()

    ci = [plain(line) for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert plain(install) in ci and plain(test) in ci
