"""Writers never destroy what they did not write: every command that writes an output, end to
end through ``snsrec.cli.main`` (and a real SIGKILL in the middle of a replace).

Each writing command, pointed at a folder (or file) of the user's own, exits 2 with one line
naming it and ``--force`` and leaves it as it was; ``--force`` writes over it; a command
re-run into its own output needs no ``--force``; config names cannot leave ``--out``; odd
``--out`` paths are one-line errors.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from snsrec.cli import main
from snsrec.io import MARK
from snsrec.llm.tasks import build_tasks

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "configs" / "llm" / "experiment-quick.yaml"
REFUSED = ("a folder snsrec did not write (no .snsrec mark of its own) and not empty; choose "
           "another --out, or pass --force to write over it")


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``snsrec ARGV`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        main(["--quiet", *map(str, argv)])
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


def users_folder(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("my own notes")
    (path / "sub" / "photo.jpg").write_bytes(b"\xff\xd8 not a real photo")
    return path


def assert_untouched(path: Path) -> None:
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == \
        ["notes.txt", "sub", "sub/photo.jpg"]
    assert (path / "notes.txt").read_text() == "my own notes"
    assert (path / "sub" / "photo.jpg").read_bytes() == b"\xff\xd8 not a real photo"
    assert not any(p.name.startswith(f".{path.name}") for p in path.parent.iterdir())


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def inputs(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What the commands read: the tiny world, a MovieLens folder, a task suite, a finished
    run's directory, run / post-training / arm configs, a hash backbone."""
    root = tmp_path_factory.mktemp("writers")
    ml = root / "ml"
    ml.mkdir()
    (ml / "ratings.dat").write_text("1::10::5::978300760\n2::11::4::978300761\n")
    (ml / "movies.dat").write_text("10::Toy Story (1995)::Animation\n11::Heat (1995)::Action\n")
    (ml / "users.dat").write_text("1::F::1::10::48067\n2::M::25::1::1\n")
    suite = root / "suite"
    build_tasks(tiny_world, suite, tasks=["Note-Gender"], max_items=3)
    run = root / "run"                       # what `compress` checks before its --out
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    return {
        "world": tiny_world, "ml": ml, "suite": suite, "run": run,
        "notes": tiny_world / "notes.parquet",
        "train": write_yaml(root / "train.yaml", {
            "name": "mine", "data": str(tiny_world), "cache": str(root / "cache"),
            "model": {"name": "lr"},
            "train": {"epochs": 1, "batch_size": 2048, "threads": 1}}),
        "cpt": write_yaml(root / "cpt.yaml", {"name": "mine", "model": "tiny-qwen2",
                                              "data": {"world": str(tiny_world)}}),
        "sft": write_yaml(root / "sft.yaml", {"name": "mine", "model": "tiny-qwen2",
                                              "data": {"tasks": str(suite)}}),
        # Arms over HTTP: sim ab checks their config, then its --out, before it reaches them
        # (an arm with runs would need a served demo run to pass the arm check).
        "a": write_yaml(root / "a.yaml", {"name": "a", "url": "http://127.0.0.1:9"}),
        "b": write_yaml(root / "b.yaml", {"name": "b", "url": "http://127.0.0.1:9"}),
        "hash": write_yaml(root / "hash.yaml", {"backbone": "hash", "buckets": 1024, "dim": 8}),
    }


# Every command that writes a directory: its argv with OUT as the directory (for train and
# the post-training stages, OUT's parent is --out and the config's name is OUT's name).
DIRS = {
    "world generate": lambda i, o: ["world", "generate", "--preset", "tiny", "--out", o],
    "data import": lambda i, o: ["data", "import", "movielens", i["ml"], "--out", o],
    "bench world": lambda i, o: ["bench", "world", "--preset", "tiny", "--out", o],
    "bench retrieval": lambda i, o: ["bench", "retrieval", "--data", "world:tiny", "--models",
                                     "toppop", "--seeds", "1", "--peers", "none", "--out", o],
    "bench conversion": lambda i, o: ["bench", "conversion", "--data", "world:tiny",
                                      "--models", "esmm", "--seeds", "1", "--out", o],
    "bench moderation": lambda i, o: ["bench", "moderation", "--world", i["world"], "--model",
                                      "tiny-qwen2", "--out", o],
    "bench sequence": lambda i, o: ["bench", "sequence", "--data", "world:tiny", "--out", o],
    "bench multimodal": lambda i, o: ["bench", "multimodal", "--data", "world:tiny", "--out",
                                      o],
    "bench compress": lambda i, o: ["bench", "compress", i["run"], "--out", o],
    "bench index": lambda i, o: ["bench", "index", "--items", "1000", "--dim", "8", "--users",
                                 "2", "--out", o],
    "bench serve": lambda i, o: ["bench", "serve", "--world", i["world"], "--out", o],
    "bench ctr": lambda i, o: ["bench", "ctr", "--data", "world:tiny", "--models", "lr",
                               "--seeds", "1", "--out", o],
    "bench throughput": lambda i, o: ["bench", "throughput", "--rows", "100", "--seeds", "1",
                                      "--peers", "", "--out", o],
    "sim ab": lambda i, o: ["sim", "ab", "--world", i["world"], "--a", i["a"], "--b", i["b"],
                            "--out", o],
    "train": lambda i, o: ["train", i["train"], "--out", o.parent],
    "index build": lambda i, o: ["index", "build", i["run"], "--out", o],
    "compress": lambda i, o: ["compress", i["run"], "--rank", "2", "--out", o],
    "llm tasks build": lambda i, o: ["llm", "tasks", "build", "--world", i["world"], "--out",
                                     o],
    "llm cpt": lambda i, o: ["llm", "cpt", i["cpt"], "--out", o.parent],
    "llm sft": lambda i, o: ["llm", "sft", i["sft"], "--out", o.parent],
    "llm dpo": lambda i, o: ["llm", "dpo", i["sft"], "--out", o.parent],
    "llm experiment": lambda i, o: ["llm", "experiment", QUICK, "--set",
                                    f"world={i['world']}", "--out", o],
    "llm eval": lambda i, o: ["llm", "eval", "--model", "tiny-qwen2", "--tasks", i["suite"],
                              "--out", o],
    "adsee bench": lambda i, o: ["adsee", "bench", "--data", i["world"], "--out", o],
    "demo": lambda i, o: ["demo", "--preset", "tiny", "--world", i["world"], "--out", o],
}

# Every command that writes one file: its argv with OUT as the file, and a file of the
# user's with that name.
FILES = {
    "features fit": (lambda i, o: ["features", "fit", i["world"], "--out", o], "mine.json"),
    "encode notes": (lambda i, o: ["encode", "notes", i["hash"], "--notes", i["notes"],
                                   "--out", o], "mine.parquet"),
    "encode notes (npy)": (lambda i, o: ["encode", "notes", i["hash"], "--notes", i["notes"],
                                         "--out", o], "mine.npy"),
    "llm moderate": (lambda i, o: ["llm", "moderate", "--model", "tiny-qwen2", "--notes",
                                   i["notes"], "--out", o], "mine.parquet"),
}


@pytest.mark.parametrize("command", sorted(DIRS))
def test_a_users_folder_survives_every_writing_command(command, inputs, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)             # a stray default path would land here
    mine = users_folder(tmp_path / "mine")
    code, out, err = cli(DIRS[command](inputs, mine), capsys)
    assert (code, out, err) == (2, "", f"error: {mine}: {REFUSED}\n")
    assert_untouched(mine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.parametrize("command", sorted(FILES))
def test_a_users_file_survives_every_file_writing_command(command, inputs, tmp_path, capsys):
    argv, name = FILES[command]
    mine = tmp_path / name
    shutil.copyfile(inputs["world"] / "users.parquet", mine)     # a file of another kind
    before = mine.read_bytes()
    code, out, err = cli(argv(inputs, mine), capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {mine}: a file snsrec did not write (not ") and \
        err.endswith("); choose another --out, or pass --force to replace it\n"), err
    assert mine.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("odd", [".", "/", "..", "sub/..", str(Path.home())])
@pytest.mark.parametrize("command", ["world generate", "data import", "bench ctr", "demo",
                                     "llm tasks build"])
def test_odd_out_paths_are_one_line_errors(command, odd, inputs, tmp_path, capsys,
                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    code, out, err = cli(DIRS[command](inputs, Path(odd)) + ["--force"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {odd}: "), err
    assert [p.name for p in tmp_path.iterdir()] == ["sub"] and not any((tmp_path / "sub").iterdir())


@pytest.mark.parametrize("out", ["ml", "ml/tables", "."])
def test_data_import_never_writes_over_or_inside_its_input(out, inputs, tmp_path, capsys,
                                                           monkeypatch):
    raw = tmp_path / "raw"
    shutil.copytree(inputs["ml"], raw / "ml")
    monkeypatch.chdir(raw)
    before = {p.name: p.read_bytes() for p in (raw / "ml").iterdir()}
    code, _, err = cli(["data", "import", "movielens", "ml", "--out", out, "--force"], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {out}: "), err
    assert {p.name: p.read_bytes() for p in (raw / "ml").iterdir()} == before
    assert [p.name for p in raw.iterdir()] == ["ml"]


def test_index_build_never_replaces_its_run(inputs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(inputs["run"], run)
    (run / "model.safetensors").write_bytes(b"weights")
    code, _, err = cli(["index", "build", run, "--out", run, "--force"], capsys)
    assert code == 2 and err.startswith(f"error: {run}: overlaps the input "), err
    assert (run / "model.safetensors").read_bytes() == b"weights"


def test_world_generate_reruns_into_its_own_output_and_force_replaces(tmp_path, capsys):
    world = tmp_path / "w"
    argv = ["world", "generate", "--preset", "tiny", "--out", world]
    assert cli(argv, capsys)[0] == 0
    assert json.loads((world / MARK).read_text())["written_by"] == "snsrec world generate"
    assert cli([*argv, "--seed", "8"], capsys)[0] == 0                      # no --force
    assert json.loads((world / "world.json").read_text())["seed"] == 8
    # A world written before the mark existed is known by its world.json.
    (world / MARK).unlink()
    assert cli([*argv, "--seed", "9"], capsys)[0] == 0
    assert json.loads((world / "world.json").read_text())["seed"] == 9
    mine = users_folder(tmp_path / "mine")
    assert cli(["world", "generate", "--preset", "tiny", "--out", mine, "--force"],
               capsys)[0] == 0
    assert not (mine / "notes.txt").exists() and (mine / "world.json").is_file()
    assert (mine / MARK).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "w"]


def test_data_import_reruns_and_force_replaces(inputs, tmp_path, capsys):
    out = tmp_path / "imported"
    argv = ["data", "import", "movielens", inputs["ml"], "--out", out]
    assert cli(argv, capsys)[0] == 0 and cli(argv, capsys)[0] == 0
    assert (out / "dataset.json").is_file() and (out / MARK).is_file()
    mine = users_folder(tmp_path / "mine")
    assert cli(["data", "import", "movielens", inputs["ml"], "--out", mine, "--force"],
               capsys)[0] == 0
    assert sorted(p.name for p in mine.iterdir()) == [
        MARK, "dataset.json", "events.parquet", "notes.parquet", "users.parquet"]


def test_train_reruns_into_its_run_and_force_replaces(inputs, tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train", inputs["train"], "--out", runs]
    assert cli(argv, capsys)[0] == 0
    first = (runs / "mine" / "metrics.json").read_bytes()
    assert (runs / "mine" / MARK).is_file()
    assert cli([*argv, "--set", "train.lr=0.02"], capsys)[0] == 0        # its own: no --force
    assert (runs / "mine" / "metrics.json").read_bytes() != first
    mine = users_folder(tmp_path / "mine")
    code, _, err = cli(["train", inputs["train"], "--out", tmp_path], capsys)
    assert (code, err) == (2, f"error: {mine}: {REFUSED}\n")
    assert_untouched(mine)
    assert cli(["train", inputs["train"], "--out", tmp_path, "--force"], capsys)[0] == 0
    assert not (mine / "notes.txt").exists() and (mine / "metrics.json").is_file()


def test_files_rerun_into_their_own_output_and_force_replaces(inputs, tmp_path, capsys):
    for command in ("features fit", "encode notes", "encode notes (npy)"):   # llm: tests/llm
        argv, name = FILES[command]
        out = tmp_path / name
        assert cli(argv(inputs, out), capsys)[0] == 0, name
        made = out.read_bytes()
        assert cli(argv(inputs, out), capsys)[0] == 0, name                 # no --force
        assert out.read_bytes() == made
        mine = tmp_path / f"users-{name}"
        mine.write_text("my own")
        assert cli(argv(inputs, mine), capsys)[0] == 2
        assert cli([*argv(inputs, mine), "--force"], capsys)[0] == 0
        assert mine.read_bytes() != b"my own"
    assert pq.read_schema(tmp_path / "mine.parquet").names == ["note_id", "vector"]
    assert (tmp_path / "mine.ids.npy").is_file() and (tmp_path / "users-mine.ids.npy").is_file()


def test_write_into_commands_add_their_files_beside_the_users(inputs, tmp_path, capsys):
    """A command that writes files into its folder (a task suite, a benchmark) with --force
    keeps what is there, and marks the folder as still the user's: its manifest.json (the
    record a suite written before the mark is known by) does not make it snsrec's."""
    mine = users_folder(tmp_path / "mine")
    argv = ["llm", "tasks", "build", "--world", inputs["world"], "--tasks", "Note-Gender",
            "--max-items", "3", "--out", mine]
    assert cli([*argv, "--force"], capsys)[0] == 0
    assert (mine / "notes.txt").read_text() == "my own notes"
    assert (mine / "manifest.json").is_file() and (mine / "train" / "Note-Gender.json").is_file()
    assert json.loads((mine / MARK).read_text())["owner"] == "user"
    assert cli(argv, capsys)[0] == 2                         # the user's: --force each time
    code, _, err = cli(["world", "generate", "--preset", "tiny", "--out", mine], capsys)
    assert (code, err) == (2, f"error: {mine}: {REFUSED}\n")
    suite = tmp_path / "suite"
    assert cli([*argv[:-1], suite], capsys)[0] == 0
    assert cli([*argv[:-1], suite], capsys)[0] == 0           # its own: no --force
    assert (suite / MARK).is_file()


@pytest.mark.parametrize(("command", "key"), [
    ("train", "name"), ("llm cpt", "name"), ("llm experiment", "name"), ("sim ab", "name"),
    ("demo", "retrievers")])
@pytest.mark.parametrize("name", ["../escaped", "a/b", "..", ".hidden", "/abs"])
def test_config_names_cannot_leave_out(command, key, name, inputs, tmp_path, capsys,
                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    if command == "demo":
        cfg = write_yaml(tmp_path / "demo.yaml", {"retrievers": {name: {"model": {
            "name": "toppop"}}}})
        argv = ["demo", "--preset", "tiny", "--world", inputs["world"], "--config", cfg,
                "--out", out / "demo"]
    elif command == "sim ab":
        argv = ["sim", "ab", "--world", inputs["world"], "--a", write_yaml(
            tmp_path / "a.yaml", {"name": name, "run": str(inputs["run"])}), "--b",
            inputs["b"], "--out", out / "sim"]
    elif command == "llm experiment":
        argv = ["llm", "experiment", QUICK, "--set", f"name={name}", "--out", out / "x"]
    else:
        argv = DIRS[command](inputs, out / "x") + ["--set", f"name={name}"]
    code, stdout, err = cli(argv, capsys)
    assert code == 2 and stdout == "" and err.count("\n") == 1, err
    assert f"key '{key}" in err and "must be a plain folder name" in err, err
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("a.yaml", "demo.yaml")] == \
        ["out"] and not any(out.iterdir())


def test_sigkill_between_the_renames_of_a_replace_loses_nothing(tmp_path, capsys):
    """A replace renames the old directory aside, then the new one in: a SIGKILL between the
    two leaves only the old copy. The next reader (or writer) puts it back whole."""
    world = tmp_path / "w"
    assert cli(["world", "generate", "--preset", "tiny", "--out", world], capsys)[0] == 0
    files = {str(p.relative_to(world)): p.read_bytes() for p in world.rglob("*") if p.is_file()}
    flag = tmp_path / "paused"
    env = {**os.environ, "SNSREC_TEST_SWAP_PAUSE": str(flag), "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-m", "snsrec.cli", "--quiet", "world",
                              "generate", "--preset", "tiny", "--seed", "8", "--out", world],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer never reached the swap"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    # The kill landed between the renames: the old world is parked, the new one beside it.
    assert not world.exists() and (tmp_path / ".w.old").is_dir()
    assert any(p.name.startswith(".w.") and p.name.endswith(".tmp") for p in tmp_path.iterdir())
    # A reader finds the old world whole.
    code, out, _ = cli(["features", "fit", world, "--out", tmp_path / "fm.json"], capsys)
    assert code == 0, out
    assert {str(p.relative_to(world)): p.read_bytes() for p in world.rglob("*")
            if p.is_file()} == files
    assert not (tmp_path / ".w.old").exists()
    # And the next writer replaces it as usual.
    assert cli(["world", "generate", "--preset", "tiny", "--seed", "8", "--out", world],
               capsys)[0] == 0
    assert json.loads((world / "world.json").read_text())["seed"] == 8
