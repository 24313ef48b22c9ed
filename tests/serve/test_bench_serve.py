"""`snsrec bench serve`: the load driver's schedule, percentiles and open-loop sending, and a
smoke run of the whole benchmark (a real server) on the tiny world."""

import asyncio
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from snsrec.bench.load import (
    drive,
    parse_mix,
    percentile,
    requests_plan,
    schedule,
    summarize,
    timeline,
)
from snsrec.errors import ConfigError


def test_percentile_is_the_nearest_rank():
    xs = [15, 20, 35, 40, 50]                  # the textbook nearest-rank example
    assert percentile(xs, 5) == 15
    assert percentile(xs, 30) == 20
    assert percentile(xs, 40) == 20
    assert percentile(xs, 50) == 35
    assert percentile(xs, 100) == 50
    hundred = list(range(1, 101))[::-1]          # order does not matter
    assert (percentile(hundred, 50), percentile(hundred, 95), percentile(hundred, 99)) == \
        (50, 95, 99)
    assert percentile([7.0], 99) == 7.0
    assert np.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(xs, 0)


def test_schedule_is_a_fixed_rate_and_a_seeded_mix():
    offsets, kinds = schedule(4000, 200.0, {"feed": 0.8, "search": 0.1, "events": 0.1}, seed=3)
    assert np.allclose(offsets, np.arange(4000) / 200.0)     # request i at i / rate
    again = schedule(4000, 200.0, {"feed": 0.8, "search": 0.1, "events": 0.1}, seed=3)[1]
    assert kinds == again
    share = {k: kinds.count(k) / len(kinds) for k in ("feed", "search", "events")}
    assert share["feed"] == pytest.approx(0.8, abs=0.03)
    assert share["search"] == pytest.approx(0.1, abs=0.02)
    with pytest.raises(ConfigError):
        schedule(0, 10.0, {"feed": 1.0})
    with pytest.raises(ConfigError):
        schedule(10, 0.0, {"feed": 1.0})


def test_parse_mix_normalises_and_rejects_unknown_endpoints():
    assert parse_mix("feed=8, search=1,events=1") == \
        pytest.approx({"feed": 0.8, "search": 0.1, "events": 0.1})
    assert parse_mix("feed=1,events=0") == {"feed": 1.0}
    for bad in ("home=1", "feed=x", "feed=-1", "feed=0", "feed=1,feed=2", ""):
        with pytest.raises(ConfigError, match="--mix"):
            parse_mix(bad)


def test_summarize_counts_errors_and_reads_only_answered_latencies():
    recs = [{"endpoint": "feed", "latency_s": s / 1e3, "status": 200} for s in (10, 20, 30, 40)]
    recs += [{"endpoint": "feed", "latency_s": 5.0, "status": 500},
             {"endpoint": "feed", "latency_s": 10.0, "status": None},
             {"endpoint": "events", "latency_s": 0.002, "status": 200}]
    out = summarize(recs, duration_s=2.0)
    feed = out["feed"]
    assert (feed["requests"], feed["errors"]) == (6, 2)
    assert (feed["p50_ms"], feed["p99_ms"], feed["max_ms"]) == pytest.approx((20, 40, 40))
    assert feed["throughput_rps"] == pytest.approx(2.0)          # 4 answered in 2 s
    assert out["events"]["p95_ms"] == pytest.approx(2.0)


def test_requests_plan_builds_valid_requests_with_unique_event_ids():
    offsets, kinds = schedule(200, 50.0, {"feed": 0.4, "search": 0.3, "events": 0.3}, seed=0)
    plan = requests_plan(offsets, kinds, np.array([1, 2, 3]), ["cats", "dogs"],
                         np.arange(100, 200), batch=5, event_base=1000)
    ids = [e["event_id"] for _, name, kw in plan if name == "events"
           for e in kw["json"]["events"]]
    assert len(ids) == 5 * kinds.count("events") and len(set(ids)) == len(ids)
    assert min(ids) == 1000
    for (_, name, kw), want in zip(plan, kinds, strict=True):
        assert name == want
        if name == "feed":
            assert kw["method"] == "GET" and kw["params"]["user_id"] in (1, 2, 3)
        elif name == "search":
            assert kw["method"] == "POST" and kw["json"]["query"] in ("cats", "dogs")


def test_drive_is_open_loop():
    """The server answers nothing until every request has arrived: a closed-loop driver
    (send, wait, send) would stall on the first one; an open-loop one sends them all on
    schedule, and each latency counts from its scheduled send time."""
    n = 8
    arrived: list[str] = []
    everyone = asyncio.Event()

    async def send(method: str, url: str, params: dict) -> int:
        arrived.append(str(params["i"]))
        if len(arrived) == n:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), timeout=30)
        return 503 if params["i"] == 3 else 200

    plan = [(i / 100.0, "feed", {"method": "GET", "url": "/v1/feed", "params": {"i": i}})
            for i in range(n)]
    records, duration = asyncio.run(drive("http://bench", plan, send=send))
    assert sorted(arrived, key=int) == [str(i) for i in range(n)]
    assert [r["status"] for r in records] == [200, 200, 200, 503, 200, 200, 200, 200]
    lat = [r["latency_s"] for r in records]
    # All are answered together, so the earlier a request was scheduled the longer it waited.
    assert lat[0] > lat[-1] and duration >= lat[0]
    assert summarize(records, duration)["feed"]["errors"] == 1
    assert [r["sent_s"] for r in records] == pytest.approx([i / 100.0 for i in range(n)])


def test_timeline_is_the_feeds_latency_second_by_second():
    recs = [{"endpoint": "feed", "sent_s": t, "latency_s": ms / 1e3, "status": st}
            for t, ms, st in [(0.1, 10, 200), (0.9, 30, 200), (1.5, 400, 200),
                              (1.6, 9, None), (3.2, 12, 200)]]
    recs.append({"endpoint": "search", "sent_s": 0.5, "latency_s": 9.0, "status": 200})
    got = timeline(recs)
    assert [t["t_s"] for t in got] == [0.0, 1.0, 3.0]              # seconds with requests
    assert [(t["requests"], t["errors"]) for t in got] == [(2, 0), (2, 1), (1, 0)]
    assert [t["max_ms"] for t in got] == pytest.approx([30, 400, 12])
    assert got[0]["p50_ms"] == pytest.approx(10)


def test_bench_serve_smoke_on_the_tiny_world(tiny_world, tmp_path):
    """The whole benchmark, small: runs trained on the tiny world, the real server started,
    a few dozen requests of each kind, JSON + Markdown written."""
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "snsrec.cli", "bench", "serve", "--world", str(tiny_world),
         "--requests", "40", "--rate", "20", "--mix", "feed=0.5,search=0.25,events=0.25",
         "--index", "flat", "--batch", "5", "--concurrency", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "CI": "true"})
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads((out / "serve.json").read_text())
    assert res["items"] == 1000 and res["requests"] == 40 and res["meets_target"] is None
    assert res["concurrency"] == 2
    assert set(res["endpoints"]) == {"feed", "search", "events"}
    assert sum(r["requests"] for r in res["endpoints"].values()) == 40
    assert res["errors"] == 0, res["error_samples"]
    assert res["server_alive"] is True
    assert len(res["worker_cpu_s"]) == 1 and 0 < res["worker_cpu_s"][0] <= res["server_cpu_s"]
    from snsrec.bench.serve import _markdown
    assert "(the workers' shares: 75% / 25%)" in _markdown({**res, "worker_cpu_s": [3.0, 1.0]})
    assert sum(t["requests"] for t in res["feed_timeline"]) == res["endpoints"]["feed"]["requests"]
    for r in res["endpoints"].values():
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"]
    md = (out / "serve.md").read_text()
    assert "| /v1/feed |" in md and "not judged" in md and "2 requests computing at once" in md
    assert md in done.stdout
    # The moderation baseline was fitted before the server started, and kept; the server
    # only loaded it (its log does not show a fit).
    assert (out / "runs" / tiny_world.name / "moderation-baseline.safetensors").is_file()
    assert "training the n-gram moderation baseline" not in \
        (out / "server.log").read_text()
    # A second run reuses the trained runs and their index.
    stamp = (out / "runs" / tiny_world.name / "redrec" / "model.safetensors").stat().st_mtime
    again = subprocess.run(
        [sys.executable, "-m", "snsrec.cli", "bench", "serve", "--world", str(tiny_world),
         "--requests", "5", "--rate", "20", "--index", "flat", "--out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "runs" / tiny_world.name / "redrec" / "model.safetensors").stat().st_mtime \
        == stamp
    bad = subprocess.run([sys.executable, "-m", "snsrec.cli", "bench", "serve", "--world",
                          str(tiny_world), "--items", "5000", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not --items" in bad.stderr
    _two_workers_share_the_store(out / "runs" / tiny_world.name, tmp_path)


def _two_workers_share_the_store(runs, tmp_path):
    """`snsrec serve --workers 2`: two worker processes behind the server; a note posted
    through one is found by every search whichever worker answers it, and the workers
    end with a killed server."""
    import httpx
    import psutil

    from snsrec.bench.load import ServerProcess

    args = [runs, "--retriever", runs / "redrec", "--ranker", runs / "lr", "--index", "flat",
            "--store", f"sqlite:{tmp_path / 'workers.sqlite'}", "--workers", "2"]
    with ServerProcess(args, tmp_path / "workers.log", "tok") as server:
        health = server.ready(600, workers=2)              # both workers up
        assert health["index_size"] == 1000 and len(health["pids"]) == 2
        assert set(health["pids"]) <= {p.pid for p in
                                       psutil.Process(server.proc.pid).children(recursive=True)}
        title = "Lantern festival over the old harbour"
        posted = httpx.post(server.url + "/v1/notes", json={"title": title},
                            headers={"Authorization": "Bearer tok"}, timeout=60).json()
        for _ in range(8):                      # fresh connections: either worker answers
            r = httpx.post(server.url + "/v1/search", json={"user_id": 1, "query": title},
                           timeout=60)
            assert r.status_code == 200
            assert r.json()["items"][0]["note_id"] == posted["note_id"]
        server.kill()                           # SIGKILL: no clean-up in the server at all

        def running(pid):
            try:
                return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        for _ in range(100):
            if not any(map(running, health["pids"])):
                break
            time.sleep(0.1)
        assert not any(map(running, health["pids"]))


def test_drive_records_a_timeout_as_an_error():
    async def send(**kw) -> int:
        await asyncio.sleep(10)
        return 200

    plan = [(0.0, "search", {"method": "POST", "url": "/v1/search", "json": {}})]
    records, _ = asyncio.run(drive("http://bench", plan, timeout=0.05, send=send))
    assert records[0]["status"] is None and "no answer" in records[0]["error"]


def test_load_client_resends_on_a_stale_keep_alive_connection():
    """A server that answers once per connection and then hangs up (as a keep-alive timeout
    does): the next request on that connection is sent again on a new one, not an error. A
    server that hangs up without answering a new connection is an error."""
    from snsrec.bench.load import LoadClient

    async def main():
        seen = []

        async def answer_once(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head.split(b" ")[1].decode())
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()

        async def hang_up(reader, writer):
            writer.close()

        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        rude = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        client = LoadClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        statuses = []
        for i in range(3):
            statuses.append(await client.request("GET", "/v1/feed", params={"i": i}))
            await asyncio.sleep(0.05)                   # let the hang-up arrive
        await client.aclose()
        records, _ = await drive(f"http://127.0.0.1:{rude.sockets[0].getsockname()[1]}",
                                 [(0.0, "feed", {"method": "GET", "url": "/v1/feed"})],
                                 timeout=5)
        server.close()
        rude.close()
        return statuses, seen, records

    statuses, seen, records = asyncio.run(main())
    assert statuses == [200, 200, 200]
    assert seen == ["/v1/feed?i=0", "/v1/feed?i=1", "/v1/feed?i=2"]
    assert records[0]["status"] is None and records[0]["error"]
