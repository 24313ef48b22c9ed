"""AdSEE: edit an ad's cover style toward a higher click rate, and check it on the truth.

``suggest(model, rows)`` starts from each note's own cover floats and climbs
the predictor's position-free attractiveness (``snsrec.models.ranking.adsee``)
by projected gradient steps: every field stays in [0, 1] and within
``max_change`` of where it started (a realistic retouch, not a new cover).
The edits are the fields that moved, largest first, with the predicted click
rate before and after.

``bench_adsee`` (`snsrec adsee bench`) does the whole loop on a world whose
covers draw clicks (``world:covers``): encode the notes with their covers,
train the predictor on the ads impressions of the training days (position
debiased), suggest edits for every ad shown on the test day, and let the
world's ground-truth user model score those impressions with the edited
covers instead of the originals (``UserModel.probabilities(..., cover=)``):
the true click-probability uplift per ad, its median and the share of ads
improved.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snsrec import __version__
from snsrec.data.schema import COVER_FIELDS
from snsrec.errors import ConfigError, ModelError
from snsrec.io import out_dir
from snsrec.progress import echo
from snsrec.records import write_record

CONFIG = Path("configs/train/adsee_world_covers.yaml")


def suggest(model: Any, rows: torch.Tensor | np.ndarray, *, steps: int = 50, lr: float = 0.05,
            max_change: float = 0.25, fields: tuple[str, ...] = COVER_FIELDS
            ) -> list[dict[str, Any]]:
    """Cover edits for the notes at vector-table rows ``rows`` (see the module doc)."""
    if getattr(model, "model_name", None) != "adsee":
        raise ModelError("adsee suggest: the run's model is not an adsee predictor")
    if len(fields) != model.cover_dims:
        raise ModelError(f"adsee suggest: {len(fields)} field names for {model.cover_dims} "
                         "cover floats")
    model.eval()
    rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    with torch.no_grad():
        text, start = model.split(rows)
        before = torch.sigmoid(model.attractiveness(text, start))
    lo, hi = (start - max_change).clamp(0, 1), (start + max_change).clamp(0, 1)
    cover = start.clone().requires_grad_(True)
    for _ in range(steps):
        gain = model.attractiveness(text, cover).sum()
        (grad,) = torch.autograd.grad(gain, cover)
        with torch.no_grad():
            # A step of lr along the sign of the gradient, kept in bounds (projected).
            cover += lr * torch.sign(grad)
            cover.copy_(torch.maximum(torch.minimum(cover, hi), lo))
    with torch.no_grad():
        after = torch.sigmoid(model.attractiveness(text, cover))
    cover = cover.detach()
    out = []
    for i in range(len(rows)):
        delta = cover[i] - start[i]
        order = torch.argsort(delta.abs(), descending=True)
        out.append({"cover": cover[i].numpy().copy(),
                    "original": start[i].numpy().copy(),
                    "predicted_before": float(before[i]), "predicted_after": float(after[i]),
                    "edits": [{"field": fields[j], "from": float(start[i, j]),
                               "to": float(cover[i, j])}
                              for j in order.tolist() if abs(float(delta[j])) > 1e-4]})
    return out


def note_rows(feature_map: Any, vector: str, note_ids: np.ndarray) -> np.ndarray:
    """Vector-table rows of raw note ids (1 = no vector)."""
    import polars as pl

    from snsrec.data.features import encode

    return encode(pl.Series(np.asarray(note_ids)), feature_map.vocabs[vector])


def suggest_for_note(run_dir: Path, note_id: int, **kw: Any) -> dict[str, Any]:
    """`snsrec adsee suggest RUN_DIR --note ID`."""
    from snsrec.runs import load_run

    run = load_run(run_dir)
    (row,) = note_rows(run.feature_map, run.model.vector, np.array([note_id]))
    if row <= 1:
        raise ConfigError(f"--note {note_id}: the run's note vectors have no such note")
    (s,) = suggest(run.model, np.array([row]), **kw)
    lines = [f"note {note_id}: predicted click rate {s['predicted_before']:.4f} → "
             f"{s['predicted_after']:.4f}"]
    lines += [f"  {e['field']:<14} {e['from']:.2f} → {e['to']:.2f}" for e in s["edits"]]
    if not s["edits"]:
        lines.append("  no edit within the bounds raises it")
    return {"text": "\n".join(lines), "suggestion": s}


def bench_adsee(data: str, out: Path, *, backbone: str = "minilm", seed: int = 0,
                max_change: float = 0.25, overrides: list[str] | None = None,
                cache: Path | None = None, rerun: bool = False,
                force: bool = False) -> dict[str, Any]:
    """The whole loop (module doc) into ``out``: adsee.json / adsee.md."""
    from snsrec.bench.multimodal import note_vectors, with_vectors
    from snsrec.bench.runner import data_slug, run_one, shipped
    from snsrec.data.datasets import DEFAULT_CACHE
    from snsrec.data.world.usermodel import UserModel
    from snsrec.runs import load_run
    from snsrec.train.pipeline import load_run_config, prepare_data

    if not (data.startswith("world:") or (Path(data) / "world.json").is_file()):
        raise ConfigError(f"adsee bench: --data {data}: the uplift needs a world's ground truth; "
                          "use world:covers or a generated world's directory")
    started = time.time()
    cache = Path(cache or DEFAULT_CACHE)
    out = out_dir(out, "adsee bench", force=force, legacy=["adsee.json"])
    vectors = note_vectors(data, out, backbone, cache)
    cfg = load_run_config(shipped(CONFIG), [*(overrides or []), f"data={data}",
                                            f"train.seed={seed}", f"cache={cache}"])
    if cfg.features is None:
        raise ConfigError(f"{CONFIG}: needs a features YAML with a vector field")
    features = with_vectors(shipped(cfg.features), vectors,
                            out / data_slug(data) / f"features-adsee-{vectors.stem}.yaml")
    cfg = cfg.model_copy(update={"features": features,
                                 "name": f"adsee-{data_slug(data)}-seed{seed}"})
    run_dir = out / "runs" / data_slug(data) / f"seed{seed}"
    run_one(cfg, run_dir, record=lambda m: {"auc": float(m["test"]["auc"])}, rerun=rerun)
    run = load_run(run_dir)
    data_ = prepare_data(cfg)
    test = data_.arrays["test"]
    notes = np.unique(test["_note_id"])
    rows = note_rows(run.feature_map, run.model.vector, notes)
    keep = rows > 1
    notes, rows = notes[keep], rows[keep]
    echo(f"adsee: suggesting cover edits for {len(notes):,} ads")
    sugg = suggest(run.model, rows, max_change=max_change)
    truth = UserModel.load(data_.root)
    if truth.params.w_cover == 0:
        echo("adsee: this world's covers draw no clicks (click.w_cover 0): expect no uplift")
    by_note = {int(n): s for n, s in zip(notes, sugg, strict=True)}
    sel = np.isin(test["_note_id"], notes)
    args = (test["_user_id"][sel], test["_note_id"][sel], test["_scenario"][sel],
            test["_position"][sel], test["_ts"][sel])
    original = np.stack([by_note[int(n)]["original"] for n in test["_note_id"][sel]])
    edited = np.stack([by_note[int(n)]["cover"] for n in test["_note_id"][sel]])
    # The control: a random retouch of each ad within the same bounds.
    rng = np.random.default_rng(seed)
    jitter = {int(n): np.clip(by_note[int(n)]["original"] + rng.uniform(
        -max_change, max_change, len(COVER_FIELDS)), 0, 1) for n in notes}
    randomised = np.stack([jitter[int(n)] for n in test["_note_id"][sel]])
    p0 = truth.probabilities(*args, cover=original)["click"]
    p1 = truth.probabilities(*args, cover=edited)["click"]
    p_rand = truth.probabilities(*args, cover=randomised)["click"]
    # Per ad (``notes`` is sorted, as np.unique's inverse is): its impressions' mean.
    ad = np.searchsorted(notes, test["_note_id"][sel])
    shown = np.bincount(ad, minlength=len(notes))

    def by_ad(p: np.ndarray) -> np.ndarray:
        return np.bincount(ad, weights=p, minlength=len(notes)) / shown

    base = by_ad(p0)
    per_ad, per_ad_random = ((by_ad(p) - base) / np.maximum(base, 1e-9) for p in (p1, p_rand))
    fields = {f: float(np.mean([any(e["field"] == f for e in s["edits"]) for s in sugg]))
              for f in COVER_FIELDS}
    result = {"benchmark": "adsee", "version": __version__,
              "command": shlex.join(["snsrec", "adsee", "bench", "--data", data, "--backbone",
                                     backbone, "--max-change", str(max_change), "--out",
                                     str(out)]),
              "predictor_test_auc": float(run.metrics["test"]["auc"]),
              "ads": len(notes), "impressions": int(sel.sum()),
              "true_ctr_before": float(p0.mean()), "true_ctr_after": float(p1.mean()),
              "median_uplift": float(np.median(per_ad)), "mean_uplift": float(per_ad.mean()),
              "share_improved": float((per_ad > 0).mean()),
              "random_median_uplift": float(np.median(per_ad_random)),
              "random_share_improved": float((per_ad_random > 0).mean()),
              "predicted_uplift_median": float(np.median(
                  [s["predicted_after"] / max(s["predicted_before"], 1e-9) - 1 for s in sugg])),
              "field_edited_share": fields, "max_change": max_change}
    result, md = write_record(out, "adsee", result, markdown,
                              default_command=result["command"], started=started, seeds=[seed])
    return {"markdown": md, "results": result}


def markdown(r: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    return "\n".join([
        "# AdSEE: cover edits judged by the ground truth\n",
        f"Command: `{r['command']}`  (snsrec {r['version']})\n",
        f"Predictor test AUC (ads impressions): {r['predictor_test_auc']:.4f}. Each ad shown on "
        f"the test day ({r['ads']:,} ads, {r['impressions']:,} impressions) gets the cover "
        f"edit that raises the predicted click rate most with every style field within "
        f"±{r['max_change']} of its own value; the world's user model then scores the same "
        "impressions with the edited cover.\n",
        markdown_table(["", "value"], [
            ["true CTR of those impressions, original covers", f"{r['true_ctr_before']:.4f}"],
            ["true CTR with the edited covers", f"{r['true_ctr_after']:.4f}"],
            ["median ad's true uplift", f"{r['median_uplift']:+.1%}"],
            ["share of ads improved", f"{r['share_improved']:.1%}"],
            ["control — a random retouch within the same bounds: median uplift",
             f"{r['random_median_uplift']:+.1%}"],
            ["control: share of ads improved", f"{r['random_share_improved']:.1%}"],
            ["median predicted uplift", f"{r['predicted_uplift_median']:+.1%}"]]),
        "", "Fields edited (share of ads): " + ", ".join(
            f"{f} {s:.0%}" for f, s in r["field_edited_share"].items()), ""])
