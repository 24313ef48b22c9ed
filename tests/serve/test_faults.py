"""Crash safety, live: `snsrec serve` as a real process, SIGKILLed while a client posts event
batches, then restarted on the same store. Every batch the server acknowledged (HTTP 200)
must still be there — `add_events` is durable when it returns, and the answer is sent after
it returns — and the restarted server must serve feeds."""

import threading
import time

import httpx
import pytest

from snsrec.bench.load import ServerProcess
from snsrec.serve.store import open_store

from .conftest import demo_layout

TOKEN = "fault-test-token"
FIRST_ID = 1 << 41          # far above the world's event ids
BATCH = 100


@pytest.fixture(scope="module")
def demo(served, redrec_run, tmp_path_factory):
    """`snsrec demo`'s layout around the served runs: models/redrec, models/lr, config.yaml."""
    return demo_layout(tmp_path_factory.mktemp("fault_demo") / "demo", served, redrec_run)


class Ingest(threading.Thread):
    """Posts batches of new events (unique ids, clicks of one user) until the server goes
    away; ``acked`` are the batches answered 200, ``sent`` every batch it began to send."""

    def __init__(self, url: str, user: int, notes: list[int], now: int):
        super().__init__(daemon=True)
        self.url, self.user, self.notes, self.now = url, user, notes, now
        self.acked: list[list[dict]] = []
        self.sent: list[list[dict]] = []
        self.failure: str | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            for b in range(10_000):
                batch = [{"event_id": FIRST_ID + b * BATCH + j, "user_id": self.user,
                          "note_id": self.notes[(b * BATCH + j) % len(self.notes)],
                          "scenario": "feed", "position": j, "click": 1, "ts": self.now}
                         for j in range(BATCH)]
                self.sent.append(batch)
                try:
                    r = client.post("/v1/events", json={"events": batch})
                except httpx.HTTPError as e:       # the server was killed: the end
                    self.failure = type(e).__name__
                    return
                assert r.status_code == 200, r.text
                assert r.json() == {"accepted": BATCH, "duplicates": 0}
                self.acked.append(batch)


def kill_mid_ingest(server: ServerProcess, ingest: Ingest, batches: int = 15) -> None:
    ingest.start()
    deadline = time.monotonic() + 120
    while len(ingest.acked) < batches and ingest.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ingest.is_alive(), f"the client stopped before the kill: {ingest.failure}"
    assert len(ingest.acked) >= batches, "too few batches acknowledged in 120 s"
    server.kill()                                   # SIGKILL: no shutdown, no flush
    ingest.join(timeout=60)
    assert not ingest.is_alive() and ingest.failure is not None   # it was cut off mid-ingest


def store_spec(kind, request, tmp_path):
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'store.sqlite'}"
    url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/3"  # a db of its own
    store = open_store(url)
    store.r.flushdb()
    store.close()
    return url


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_acknowledged_events_survive_a_sigkill(kind, demo, served, tmp_path, request):
    spec = store_spec(kind, request, tmp_path)
    user = served["user"]
    notes = sorted(served["notes"])[:500]
    args = [demo, "--store", spec, "--index", "flat"]
    server = ServerProcess(args, tmp_path / "server.log", TOKEN,
                           env={"OMP_NUM_THREADS": "1"})
    try:
        before = server.ready(timeout=600)["events"]
        ingest = Ingest(server.url, user, notes, served["now"])
        kill_mid_ingest(server, ingest)
    finally:
        server.stop()
    assert server.proc.returncode == -9
    acked = [e["event_id"] for b in ingest.acked for e in b]
    posted = [e["event_id"] for b in ingest.sent for e in b]

    if kind == "sqlite":                 # read the file the killed server left behind
        store = open_store(spec)
        stored = {r[0] for r in store.db.execute(
            "SELECT event_id FROM events WHERE event_id >= ?", (FIRST_ID,))}
        store.close()
        assert set(acked) <= stored      # every acknowledged event is there
        assert stored <= set(posted)
        for b in ingest.sent:            # a batch is one transaction: all of it or none
            assert len({e["event_id"] for e in b} & stored) in (0, len(b))

    again = ServerProcess(args, tmp_path / "server2.log", TOKEN, env={"OMP_NUM_THREADS": "1"})
    try:
        health = again.ready(timeout=600)
        assert before + len(acked) <= health["events"] <= before + len(posted)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=again.url, headers=headers, timeout=60) as client:
            replay = [e for b in ingest.acked for e in b]
            got = [client.post("/v1/events", json={"events": replay[i:i + 1000]}).json()
                   for i in range(0, len(replay), 1000)]
            assert sum(g["accepted"] for g in got) == 0
            assert sum(g["duplicates"] for g in got) == len(acked)   # all of them, stored
            feed = client.get("/v1/feed", params={"user_id": user, "k": 5})
            assert feed.status_code == 200, feed.text
            items = [i["note_id"] for i in feed.json()["items"]]
            assert len(items) == 5
            # The acknowledged impressions count as seen: none of them is served again.
            assert not set(items) & {e["note_id"] for b in ingest.acked for e in b}
    finally:
        again.stop()
