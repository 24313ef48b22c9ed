"""Benchmark world generation: wall time, events/s and peak RSS per preset.

Each preset runs in its own child process (``python -m snsrec.bench.world``) so its
peak resident memory is measured alone; the child reports its own
``ru_maxrss`` and the parent times the whole child. Generated worlds go to a
temporary directory that is removed afterwards.
"""

from __future__ import annotations

import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from snsrec.errors import DataError
from snsrec.io import out_dir
from snsrec.progress import echo
from snsrec.records import write_record

# Targets from the Foundation issue; presets without a target print "-".
TARGETS = {"medium": {"seconds": 180.0, "peak_rss_gb": 4.0}}


def _child(preset: str, seed: int, out: str) -> None:
    """Entry point of the child process: generate, then print one JSON line."""
    from snsrec.data.world.generate import generate_world
    from snsrec.progress import set_quiet

    set_quiet(True)
    t0 = time.perf_counter()
    info = generate_world(preset, seed, Path(out))
    seconds = time.perf_counter() - t0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    print(json.dumps({"rows": info["rows"], "generate_s": seconds, "peak_rss_kb": rss_kb}))


def run_preset(preset: str, seed: int, workdir: Path) -> dict:
    out = workdir / f"world_{preset}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snsrec.bench.world", preset, str(seed), str(out)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"bench world: generating preset '{preset}' failed ({tail}); "
                        f"run `snsrec world generate --preset {preset}` to see the full error")
    rep = json.loads(proc.stdout.strip().splitlines()[-1])
    events = int(rep["rows"]["events"])
    target = TARGETS.get(preset)
    peak_gb = rep["peak_rss_kb"] / 1024**2
    res = {
        "preset": preset, "seed": seed, "events": events, "notes": rep["rows"]["notes"],
        "users": rep["rows"]["users"], "wall_s": round(wall, 2),
        "generate_s": round(rep["generate_s"], 2),
        "events_per_s": round(events / max(rep["generate_s"], 1e-9)),
        "peak_rss_gb": round(peak_gb, 3), "target": target,
    }
    if target:
        res["meets_target"] = bool(wall <= target["seconds"] and peak_gb <= target["peak_rss_gb"])
    return res


def markdown(record: dict) -> str:
    results = record["results"]
    lines = ["# World generation benchmark", "",
             "| preset | users | notes | events | wall s | events/s | peak RSS GB | target |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        t = r["target"]
        target = (f"≤ {t['seconds']:.0f} s, ≤ {t['peak_rss_gb']:.0f} GB: "
                  f"{'met' if r['meets_target'] else 'MISSED'}") if t else "-"
        lines.append(f"| {r['preset']} | {r['users']:,} | {r['notes']:,} | {r['events']:,} | "
                     f"{r['wall_s']:.1f} | {r['events_per_s']:,} | {r['peak_rss_gb']:.2f} | "
                     f"{target} |")
    return "\n".join(lines) + "\n"


def bench_world(presets: list[str], seed: int, out: Path, *, force: bool = False) -> dict:
    """Time each preset in a child process; write ``out/world.json`` and ``out/world.md``."""
    from snsrec.data.world.generate import world_config

    started = time.time()
    for p in presets:
        world_config(p)  # unknown preset → ConfigError before any work
    out = out_dir(out, "bench world", force=force, legacy=["world.json"])
    results = []
    with tempfile.TemporaryDirectory(prefix="snsrec-bench-world-") as tmp:
        for p in presets:
            echo(f"bench world: generating preset {p} ...")
            results.append(run_preset(p, seed, Path(tmp)))
    # Each file is written to a temp sibling and renamed; other files in ``out`` are kept.
    command = shlex.join(["snsrec", "bench", "world", *[x for p in presets
                                                        for x in ("--preset", p)],
                          "--seed", str(seed), "--out", str(out)])
    _, md = write_record(out, "world", {"benchmark": "world", "results": results}, markdown,
                         default_command=command, started=started, seeds=[seed])
    return {"results": results, "markdown": md}


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), sys.argv[3])
