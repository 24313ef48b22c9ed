"""Small hand-made canonical tables for the tables / splits / features tests.

The ``make_data`` fixture is the plain function below (pytest runs in importlib mode, so
test modules cannot import helpers from this directory).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from snsrec.data.schema import SCENARIOS, conform
from snsrec.io import write_json, write_parquet

T0 = dt.datetime(2024, 3, 1)
DAYS = 6
VALID_START = T0 + dt.timedelta(days=DAYS - 2)
TEST_START = T0 + dt.timedelta(days=DAYS - 1)


def make_data(root: Path, seed: int = 0, n_users: int = 12, n_notes: int = 30,
              n_requests: int = 80, slate: int = 3, click_p: float = 0.4) -> Path:
    """A world-shaped directory: notes, users, events (requests of ``slate`` rows), world.json.

    Rows of one request share a timestamp, and requests often share seconds, so
    "strictly before" is exercised; a few notes and users are missing from the
    side tables and some values are null, so OOV paths are exercised too.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    cats = np.array(["food", "travel", "pets", "tech"])
    tags = ["#a", "#b", "#c", "#d", "#e"]
    note_ids = np.arange(100, 100 + n_notes)
    notes = pa.table({
        "note_id": note_ids,
        "author_id": rng.integers(0, 5, n_notes),
        "created_at": [T0 - dt.timedelta(hours=int(h)) for h in rng.integers(0, 200, n_notes)],
        "language": rng.choice(["en", "zh"], n_notes).tolist(),
        "hashtags": [list(rng.choice(tags, int(k), replace=False)) if k else []
                     for k in rng.integers(0, 4, n_notes)],
        "category": [None if i % 7 == 0 else str(c) for i, c in
                     enumerate(rng.choice(cats, n_notes))],
        "is_ad": rng.random(n_notes) < 0.2,
    })
    users = pa.table({
        "user_id": np.arange(n_users - 1),           # the last user has no users row
        "gender": rng.choice(["f", "m", "u"], n_users - 1).tolist(),
        "city": rng.choice(["sh", "bj", "gz", "sz"], n_users - 1).tolist(),
    })
    # Timestamps on a coarse grid (10-minute steps) so that distinct requests collide.
    steps = rng.integers(0, DAYS * 24 * 6, n_requests)
    steps[0] = 0                     # at least one request in the training period
    req_ts = np.array([T0 + dt.timedelta(minutes=10 * int(s)) for s in steps])
    req_user = rng.integers(0, n_users, n_requests)
    req_scen = rng.choice(SCENARIOS, n_requests)
    n = n_requests * slate
    all_notes = np.concatenate([note_ids, [999, 998]])   # two notes without a notes row
    events = pa.table({
        "event_id": np.arange(n),
        "request_id": np.repeat(np.arange(n_requests), slate),
        "user_id": np.repeat(req_user, slate),
        "note_id": rng.choice(all_notes, n),
        "scenario": np.repeat(req_scen, slate).tolist(),
        "position": np.tile(np.arange(slate), n_requests).astype(np.int32),
        "ts": np.repeat(req_ts, slate).tolist(),
        "click": (rng.random(n) < click_p).astype(np.int8),
        "like": (rng.random(n) < 0.1).astype(np.int8),
    })
    write_parquet(root / "notes.parquet", conform(notes, "notes"))
    write_parquet(root / "users.parquet", conform(users, "users"))
    write_parquet(root / "events.parquet", conform(events, "events"))
    write_json(root / "world.json", {"preset": "handmade", "rows": {"events": n},
                                     "split": {"valid_start": VALID_START.isoformat(),
                                               "test_start": TEST_START.isoformat()}})
    return root


@pytest.fixture(name="make_data")
def make_data_fixture():
    return make_data
