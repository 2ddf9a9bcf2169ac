"""The `tr2m` entry point: instant help, version, one-line errors."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from tr2m_cli import __version__
from tr2m_cli.cli import cli


def test_help_and_version_import_nothing_heavy():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tr2m_cli.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(cli, ['--version']); assert r.exit_code == 0, r.output\n"
        "from tr2m_cli.cli import COMMANDS\n"
        "for name in COMMANDS:\n"
        "    r = CliRunner().invoke(cli, [name, '--help']); assert r.exit_code == 0, r.output\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'open3d', 'numpy') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_runs(tmp_path):
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    result = subprocess.run([str(bin_dir / "tr2m"), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"tr2m {__version__}"
    result = subprocess.run([sys.executable, "-m", "tr2m_cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "weights" in result.stdout


def test_user_errors_are_one_line_with_status_2(tmp_path):
    result = CliRunner().invoke(cli, ["weights", "path", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tr2m: error: ") and "not a tr2m model folder" in lines[0]
    assert "Traceback" not in result.output
