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


def _write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _bad_inputs(tmp):
    """(name, argv, output path that must not appear) for the issue's list of bad input."""
    ml = tmp / "ml"
    _write(ml / "ratings.dat", "1::10::5::978300760\n-3::11::4::978300761\n")   # negative id
    _write(ml / "movies.dat", "10::Toy Story (1995)::Animation\n11::Heat (1995)::Action\n")
    _write(ml / "users.dat", "1::F::1::10::48067\n")
    bars = tmp / "bars"
    for split in ("train", "valid", "test"):
        _write(bars / f"{split}.csv", "user,item,cost\n1,2,3\n")                # no label column
    corrupt = tmp / "corrupt"
    _write(corrupt / "events.parquet", "this is not parquet")
    _write(corrupt / "world.json", '{"split": {"valid_start": "2024-01-02T00:00:00", '
                                   '"test_start": "2024-01-03T00:00:00"}}')
    typo = _write(tmp / "demo.yaml", "train:\n  epochz: 3\n")
    return [
        ("missing file", ["data", "import", "movielens", str(tmp / "nope"), "--out",
                          str(tmp / "o1")], tmp / "o1"),
        ("negative id", ["data", "import", "movielens", str(ml), "--out", str(tmp / "o2")],
         tmp / "o2"),
        ("missing column", ["data", "import", "bars", str(bars), "--out", str(tmp / "o3")],
         tmp / "o3"),
        ("unknown source", ["data", "import", "movielenz", str(ml), "--out", str(tmp / "o4")],
         tmp / "o4"),
        ("corrupt parquet", ["features", "fit", str(corrupt), "--out", str(tmp / "fm.json")],
         tmp / "fm.json"),
        ("config typo", ["world", "generate", "--preset", "tiny", "--set", "harm_shar=0.1",
                         "--out", str(tmp / "w1")], tmp / "w1"),
        ("bad value", ["world", "generate", "--preset", "tiny", "--set", "harm_share=-1",
                       "--out", str(tmp / "w2")], tmp / "w2"),
        ("demo config typo", ["demo", "--preset", "tiny", "--config", str(typo), "--out",
                              str(tmp / "d1")], tmp / "d1"),
        ("demo override typo", ["demo", "--preset", "tiny", "--set", "train.lrr=0.1", "--out",
                                str(tmp / "d2")], tmp / "d2"),
    ]


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path):
    for name, argv, never in _bad_inputs(tmp_path):
        r = _run(*argv)
        assert r.returncode == 2, (name, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (name, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == "", name
        assert not never.exists(), name
        assert not any(p.name.startswith(f".{never.name}") for p in never.parent.iterdir()), name
