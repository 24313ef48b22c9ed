"""The CLI end to end: --help everywhere, --version, one-line errors with exit 2."""

import subprocess
import sys

import pytest
import typer

from snsrec import __version__
from snsrec.cli import app


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snsrec.cli", *args], capture_output=True,
                          text=True, timeout=300)


def _command_paths(typer_app: typer.Typer, prefix=()):
    group = typer.main.get_group(typer_app)

    def walk(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(group, prefix)


COMMANDS = list(_command_paths(app))


def test_every_command_is_listed():
    names = {" ".join(p) for p in COMMANDS}
    for want in ("world generate", "data import", "features fit", "bench world", "demo"):
        assert want in names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "root")
def test_help_on_every_command(path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version():
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"snsrec {__version__}"


def test_unknown_preset_is_a_usage_error():
    r = _run("world", "generate", "--preset", "huge", "--out", "x")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert "'huge' is not one of" in r.stderr


def test_missing_argument_is_one_line():
    r = _run("data", "import")
    assert r.returncode == 2 and r.stderr.startswith("error: Missing argument")
    assert r.stderr.count("\n") == 1
