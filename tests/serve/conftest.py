"""Serving fixtures: a real redis-server on a free loopback port, and the tiny world's
served runs (a RED-Rec retriever, an LR ranker, the note cards), per test session."""

import contextlib
import shutil
import subprocess
import threading
import time

import pytest

from snsrec.bench.load import free_port
from snsrec.data.tables import load_tables
from snsrec.serve.pipeline import Retriever
from snsrec.serve.store import import_events, open_store


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed; `make test` installs it (apt-get)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


REDREC = {"dim": 16, "width": 32, "layers": 1, "heads": 2, "negatives": 50,
          "text": {"backbone": "hash", "buckets": 1 << 14, "dim": 16}}


@pytest.fixture(scope="session")
def redrec_run(tiny_world, tmp_path_factory):
    from snsrec.train.pipeline import RunConfig, train_run

    cfg = RunConfig.model_validate({
        "name": "redrec", "data": str(tiny_world),
        "model": {"name": "redrec", "params": REDREC},
        "train": {"epochs": 1, "batch_size": 256, "lr": 0.003, "loss": "window_nce",
                  "monitor": "hr@100"},
        "retrieval": {"window": 4, "cutoffs_per_user": 5, "sequence": {
            "blocks": {"feed": 16, "search": 8, "discover": 8, "ads": 8}}}})
    run_dir = tmp_path_factory.mktemp("serve_runs") / "redrec"
    train_run(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def served(redrec_run, tiny_world, tmp_path_factory):
    """The tiny world's tables, a served RED-Rec run, an LR ranker run and the note cards."""
    from snsrec.serve.pipeline import Ranker
    from snsrec.serve.service import note_cards
    from snsrec.train.pipeline import RunConfig, train_run

    lr = tmp_path_factory.mktemp("serve_lr") / "lr"
    train_run(RunConfig.model_validate({"name": "lr", "data": str(tiny_world),
                                        "model": {"name": "lr"},
                                        "train": {"epochs": 1, "batch_size": 1024}}), lr)
    tables = load_tables(tiny_world)
    retriever = Retriever(redrec_run, "flat")
    notes = note_cards(tables)
    return {"tables": tables, "retriever": retriever, "ranker": Ranker(lr, tables),
            "notes": notes, "now": int(retriever.corpus.created.max()) + 1,
            "user": int(tables.events.select("user_id").head(1).collect().item())}


def stored(served, tmp_path):
    store = open_store(f"sqlite:{tmp_path / 's.sqlite'}")
    import_events(store, served["tables"].events)
    return store


def fresh_platform(served, tmp_path, **kw):
    """A platform with its own retriever and ranker: posting notes changes their indexes."""
    from snsrec.serve.pipeline import Moderation, Platform, Ranker

    return Platform(stored(served, tmp_path), Retriever(served["retriever"].run_dir, "flat"),
                    Ranker(served["ranker"].run_dir, served["tables"]), Moderation(),
                    dict(served["notes"]), **kw)


@contextlib.contextmanager
def live(app):
    """``app`` served by uvicorn on a free loopback port in a thread: yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    else:
        pytest.fail("uvicorn did not start within 20 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def demo_layout(root, served, redrec_run):
    """`snsrec demo`'s layout around the served runs (models/redrec, models/lr, config.yaml
    naming the ranker) at ``root``: what `snsrec serve RUN_DIR` reads."""
    import yaml

    (root / "models").mkdir(parents=True)
    shutil.copytree(redrec_run, root / "models" / "redrec")
    shutil.copytree(served["ranker"].run_dir, root / "models" / "lr")
    (root / "config.yaml").write_text(yaml.safe_dump({"ranker": {"name": "lr"}}))
    return root
