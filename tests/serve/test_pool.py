"""`snsrec serve --workers N`: worker processes behind one line (snsrec.serve.pool)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from snsrec.serve.pool import CALLS, Local, WorkerDied, WorkerPool
from snsrec.serve.service import platform_of

from .conftest import fresh_platform


def _settings(served, redrec_run, tmp_path):
    from snsrec.serve.service import prepare_shared

    run_dir, store = tmp_path / "run", f"sqlite:{tmp_path / 'pool.sqlite'}"
    run_dir.mkdir()
    ranker = served["ranker"].run_dir
    prepare_shared(run_dir, store, retriever=redrec_run, ranker=ranker, index_kind="flat")
    return {"run_dir": str(run_dir), "store": store, "retriever": str(redrec_run),
            "ranker": str(ranker), "index_kind": "flat"}


def test_worker_pool_one_line_and_a_dead_worker_is_replaced(served, redrec_run, tmp_path):
    user, now = served["user"], served["now"]
    pool = WorkerPool(platform_of, _settings(served, redrec_run, tmp_path), 2, start_timeout=600)
    try:
        assert len(set(pool.pids)) == 2 and pool.users

        async def main():
            feed = ("feed", user, 5, now, "feed", False)
            # Three calls at once on two workers: two compute, the third waits in the line
            # and goes to whichever finishes first.
            calls = [asyncio.ensure_future(pool.call(*feed)) for _ in range(3)]
            await asyncio.sleep(0)
            assert not pool._free and len(pool._waiting) == 1
            answers = await asyncio.gather(*calls)
            assert [len(a["items"]) for a in answers] == [5, 5, 5]
            assert answers[0]["items"] == answers[1]["items"] == answers[2]["items"]
            assert len(pool._free) == 2 and not pool._waiting
            # A platform error reaches the caller as itself; the worker serves on.
            with pytest.raises(KeyError):
                await pool.call("add_events", [{"user_id": user}])
            assert (await pool.call("health"))["index_size"] == len(served["notes"])
            # Only the platform's calls are answered.
            with pytest.raises(ValueError, match="no call 'store'"):
                await pool.call("store")
            # A worker killed while idle: the call that meets it fails with WorkerDied, a
            # new worker starts in its place and joins the line once loaded.
            dead = pool.pids[0]
            os.kill(dead, signal.SIGKILL)
            time.sleep(0.5)
            died = 0
            for _ in range(2):
                try:
                    await pool.call("health")
                except WorkerDied as e:
                    died += 1
                    assert str(dead) in str(e)
            assert died == 1 and dead not in pool.pids
            for _ in range(1200):
                if len(pool._free) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(pool._free) == 2 and len(set(pool.pids)) == 2
            again = await asyncio.gather(*(pool.call(*feed) for _ in range(2)))
            assert again[0]["items"] == answers[0]["items"]

        asyncio.run(main())
    finally:
        pool.close()
    for pid in pool.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_local_backend_runs_the_platforms_calls(served, tmp_path):
    p = fresh_platform(served, tmp_path)
    local = Local(p)
    assert local.pids == [os.getpid()]
    h = asyncio.run(local.call("health"))
    assert h == {"index_size": len(p.retriever.index), "events": p.store.count_events()}
    for name in CALLS:
        assert callable(getattr(p, name))
    assert asyncio.run(local.call("note", 10**12)) == ("missing", None)
    assert asyncio.run(local.call("take_down", 10**12)) is None
    unknown = asyncio.run(local.call("add_events", [{"event_id": 1, "user_id": 1,
                                                     "note_id": 10**12, "scenario": "feed"}]))
    assert unknown == {"unknown": [10**12]}
