"""RED-Rec: towers' shapes, window NCE's matching and masks, and learning topical interests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snsrec.data.batches import TensorBatches, to_tensors
from snsrec.data.sequences import NOTE, QUERY, Corpus
from snsrec.errors import ModelError
from snsrec.eval.protocols import full_corpus
from snsrec.models.registry import build_model
from snsrec.train.trainer import TrainConfig, Trainer
from snsrec.train.window_nce import assign_interests, window_nce

TOPICS = ["coffee latte espresso", "hiking mountain trail", "lipstick makeup beauty",
          "football goal match", "puppy dog training", "sourdough bread baking",
          "guitar chords song", "tokyo travel guide"]
SUBS, PER_SUB, T, W = 5, 8, 12, 4       # a note is (topic, sub-topic); users like one pair
CLUSTERS = len(TOPICS) * SUBS
HASH = {"backbone": "hash", "buckets": 4096, "dim": 32}


def corpus() -> Corpus:
    texts = [f"{TOPICS[c // SUBS]} style{c % SUBS} note{i}"
             for c in range(CLUSTERS) for i in range(PER_SUB)]
    n = len(texts)
    return Corpus(np.arange(n, dtype=np.int64), texts, np.zeros(n, np.int64),
                  [f"best {t.split()[0]}" for t in TOPICS], np.full(n, -np.log(n), np.float32))


def users(n: int, seed: int) -> dict[str, np.ndarray]:
    """Each user likes one (topic, style) cluster: T behaviours in it (one a search query
    for its topic), then the W next clicks from the same cluster."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, CLUSTERS, n)
    notes = cluster[:, None] * PER_SUB + rng.integers(0, PER_SUB, (n, T + W))
    kind = np.full((n, T), NOTE, np.int8)
    kind[:, 3] = QUERY
    item = notes[:, :T].copy()
    item[:, 3] = cluster // SUBS
    return {"hist_item": item, "hist_kind": kind,
            "hist_scenario": np.where(kind == QUERY, 2, 1).astype(np.int8),
            "hist_recency": np.tile(np.arange(T, 0, -1, dtype=np.int8), (n, 1)),
            "target_scenario": np.zeros(n, np.int8), "targets": notes[:, T:],
            "target": notes[:, T], "_ts": np.ones(n, np.int64)}


def small(name="redrec", **kw):
    extra = {"heads": 2, "dropout": 0.0} if name == "redrec" else {}
    return build_model(name, corpus(), **{"dim": 16, "text": HASH, "width": 32, "layers": 1,
                                          "negatives": 20, **extra, **kw})


def test_towers_shapes_and_unit_vectors():
    torch.manual_seed(0)
    model = small()
    batch = to_tensors({k: v for k, v in users(5, 1).items() if not k.startswith("_")})
    out = model(batch)
    assert out["user_emb"].shape == (5, 3, 16)
    torch.testing.assert_close(out["user_emb"].norm(dim=-1), torch.ones(5, 3))
    assert out["pos_emb"].shape == (5, W, 16) and out["neg_emb"].shape == (20, 16)
    model.eval()
    assert set(model(batch)) == {"user_emb"}                 # no targets at inference
    items = model.item_vectors(torch.arange(len(corpus())))
    assert model.score(model(batch)["user_emb"], items).shape == (5, len(corpus()))
    # The mean-pool baseline: one interest vector from the same tokens.
    dssm = small("dssm")
    assert dssm(batch)["user_emb"].shape == (5, 1, 16)
    # The id ablation has a row per note instead of the text tower.
    ids = small(item_encoder="id")
    assert ids.ids.weight.shape == (len(corpus()), 16)


def test_interests_go_to_the_cluster_they_match():
    user = F.normalize(torch.eye(3, 8)[None].repeat(1, 1, 1), dim=-1)          # e0, e1, e2
    pos = F.normalize(torch.tensor([[[0.1, 0, 1, 0, 0, 0, 0, 0], [1, 0.1, 0, 0, 0, 0, 0, 0],
                                     [0, 0.1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0.]]]),
                      dim=-1)
    mask = torch.tensor([[True, True, True, False]])
    got = assign_interests(user, pos, mask)
    assert got[0, :3].tolist() == [2, 0, 2]


def _out(user, pos, rows, neg, neg_rows):
    return {"user_emb": user, "pos_emb": pos, "pos_mask": torch.ones(pos.shape[:2], dtype=bool),
            "pos_rows": rows, "pos_log_q": torch.zeros(rows.shape), "neg_emb": neg,
            "neg_rows": neg_rows, "neg_log_q": torch.tensor(-2.0), "scale": torch.tensor(10.0)}


def test_window_nce_masks_false_negatives_and_rewards_alignment():
    torch.manual_seed(0)
    user = F.normalize(torch.randn(1, 3, 8), dim=-1)
    pos = F.normalize(torch.randn(1, 1, 8), dim=-1)
    rows = torch.tensor([[0]])
    neg = F.normalize(torch.randn(5, 8), dim=-1)
    base = window_nce(_out(user, pos, rows, neg, torch.arange(10, 15)), {})
    # The positive's own item drawn as a negative, or a near-copy of it (cosine > 0.98),
    # is a false negative: masked, the loss does not change.
    near = F.normalize(pos[0, 0] + 0.01 * torch.randn(8), dim=-1)[None]
    dup = torch.cat([neg, pos[0], near])
    dup_rows = torch.cat([torch.arange(10, 15), rows[0], torch.tensor([90])])
    torch.testing.assert_close(window_nce(_out(user, pos, rows, dup, dup_rows), {}), base)
    # A real extra negative does change it.
    assert window_nce(_out(user, pos, rows, torch.cat([neg, -pos[0]]),
                           torch.arange(10, 16)), {}) != base
    # Interests pointing at the positive give a lower loss than random ones.
    aligned = pos.repeat(1, 3, 1)
    assert window_nce(_out(aligned, pos, rows, neg, torch.arange(10, 15)), {}) < base


def test_window_nce_drops_negatives_created_after_the_click():
    """A note created after a positive's click did not exist then: as a negative of that
    click (uniform or in-batch) it changes nothing; one created before it does."""
    torch.manual_seed(0)
    user = F.normalize(torch.randn(2, 3, 8), dim=-1)
    pos = F.normalize(torch.randn(2, 1, 8), dim=-1)
    rows, neg = torch.tensor([[0], [1]]), F.normalize(torch.randn(5, 8), dim=-1)

    def loss(pos_created, neg_created, clicks=(100, 100)):
        out = _out(user, pos, rows, neg, torch.arange(10, 15))
        out.update(pos_ts=torch.tensor(clicks)[:, None], pos_created=pos_created[:, None],
                   neg_created=neg_created)
        return window_nce(out, {})

    past = torch.zeros(5, dtype=torch.long)
    base = loss(torch.tensor([0, 0]), past)
    assert loss(torch.tensor([0, 0]), torch.tensor([0, 0, 0, 0, 500])) < base
    # Positive 1 created after positive 0's click: no longer positive 0's in-batch negative.
    later = loss(torch.tensor([0, 50]), past, (40, 100))
    assert later < loss(torch.tensor([0, 30]), past, (40, 100))


@pytest.mark.parametrize("name", ["redrec", "dssm", "redrec-lm"])
def test_learns_each_users_topic_through_the_trainer(name):
    torch.manual_seed(0)
    # redrec-lm: the user tower is a (tiny, random) Hugging Face causal LM over inputs_embeds.
    model = small("redrec", backbone="causal-lm") if name == "redrec-lm" else small(name)
    train, valid = users(400, 1), users(120, 2)
    inputs = {k: v for k, v in train.items() if not k.startswith("_") and k != "target"}
    ks = (1, 10, 50)
    trainer = Trainer(TrainConfig(epochs=10, batch_size=64, lr=3e-3, loss="window_nce",
                                  monitor="hr@10", early_stop_patience=10, seed=0),
                      evaluator=lambda m, a: full_corpus(m, a, ks=ks))
    before = full_corpus(model, valid, ks=ks)
    fit = trainer.fit(model, TensorBatches(inputs, 64, shuffle=True, seed=0), valid)
    after = full_corpus(model, valid, ks=ks)
    # Random: HR@10 = 10 / 320; a model that found the user's (topic, style) cluster ranks
    # its 8 notes first.
    assert after["hr@10"] > 0.8 and after["hr@10"] > before["hr@10"] + 0.5, (before, after)
    assert fit["valid"]["hr@10"] == pytest.approx(after["hr@10"])     # best epoch restored


def test_full_corpus_batches_by_the_score_budget_with_the_same_ranks(monkeypatch):
    from snsrec.eval import protocols

    torch.manual_seed(0)
    model, valid = small(), users(60, 2)
    whole = full_corpus(model, valid, ks=(1, 10, 50))
    monkeypatch.setattr(protocols, "SCORE_BUDGET", 3 * model.n_items)  # 3 queries a batch
    assert full_corpus(model, valid, ks=(1, 10, 50)) == whole


def test_save_load_round_trip_rebuilds_the_text_tower_from_the_corpus(tmp_path):
    from snsrec.runs import load_run, save_run

    torch.manual_seed(0)
    model = small()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    save_run(tmp_path / "run", model, corpus(), {"note": "redrec"}, {"hr@10": 0.1})
    assert (tmp_path / "run" / "corpus.parquet").is_file()
    assert not (tmp_path / "run" / "feature_map.json").exists()
    run = load_run(tmp_path / "run")
    assert run.feature_map.texts == corpus().texts and run.feature_map.queries == corpus().queries
    batch = to_tensors({k: v for k, v in users(6, 3).items() if not k.startswith("_")})
    with torch.no_grad():
        torch.testing.assert_close(run.model(batch)["user_emb"], model(batch)["user_emb"])
        rows = torch.arange(len(corpus()))
        torch.testing.assert_close(run.model.item_vectors(rows), model.item_vectors(rows))


def test_bf16_autocast_keeps_interest_vectors_and_loss_in_float32():
    torch.manual_seed(0)
    model = small()
    batch = to_tensors({k: v for k, v in users(8, 4).items() if not k.startswith("_")})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert out["user_emb"].dtype == torch.float32
    loss = window_nce(out, batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()


def test_note_age_bias_learns_that_fresh_notes_get_clicked():
    """Every user's next clicks are notes created in the hour before the query, whatever
    their history: only a model that sees note age can rank them first."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    base = corpus()
    n, now = len(base), 1_000_000
    fresh = rng.choice(n, 16, replace=False)
    created = now - rng.integers(100 * 3600, 1000 * 3600, n)
    created[fresh] = now - rng.integers(60, 3600, len(fresh))
    aged = Corpus(base.note_ids, base.texts, created.astype(np.int64), base.queries,
                  base.log_q)

    def rows(k: int, seed: int) -> dict[str, np.ndarray]:
        r = users(k, seed)
        picks = np.random.default_rng(seed).choice(fresh, (k, W))
        r.update(targets=picks, target=picks[:, 0], query_ts=np.full(k, now, np.int64),
                 _ts=np.full(k, now, np.int64))
        return r

    train, valid = rows(400, 1), rows(120, 2)
    inputs = {k: v for k, v in train.items() if not k.startswith("_") and k != "target"}
    got = {}
    for buckets in (0, 24):
        torch.manual_seed(0)
        model = build_model("redrec", aged, dim=16, text=HASH, width=32, layers=1, heads=2,
                            negatives=20, dropout=0.0, age_buckets=buckets)
        trainer = Trainer(TrainConfig(epochs=6, batch_size=64, lr=3e-3, loss="window_nce",
                                      monitor="hr@10", early_stop_patience=6, seed=0),
                          evaluator=lambda m, a: full_corpus(m, a, ks=(10,),
                                                             created=aged.created))
        trainer.fit(model, TensorBatches(inputs, 64, shuffle=True, seed=0), valid)
        got[buckets] = full_corpus(model, valid, ks=(10,), created=aged.created)["hr@10"]
        if buckets:
            bias = model.age_bias.detach()
            assert bias[1] > bias[7:10].max() + 0.1, bias  # under an hour old vs 5-40 days
    # 16 fresh notes among 320: ranking them first puts 10 of them in the top 10.
    assert got[24] > 0.5 and got[24] > got[0] + 0.2, got


def test_fresh_channel_gives_every_nth_place_to_a_note_newer_than_the_training(tmp_path):
    """With fresh_every 4 the full-corpus ranking is the served list: the one note created
    after the training cut-off takes place 3 (the 4th) for every user, whatever it scores;
    without the channel it ranks where its score puts it."""
    base = corpus()
    created = np.zeros(len(base), np.int64)
    created[7] = 100                                          # after the cut-off at 50
    fresh = Corpus(base.note_ids, base.texts, created, base.queries, base.log_q, 50)
    path = tmp_path / "corpus.parquet"
    fresh.save(path)
    loaded = Corpus.load(path)
    assert loaded.train_end == 50 and loaded.fresh().tolist() == (created >= 50).tolist()
    rows = users(30, 3)
    rows.update(target=np.full(30, 7), _ts=np.full(30, 200, np.int64))
    torch.manual_seed(0)
    plain = build_model("redrec", loaded, dim=16, text=HASH, width=32, layers=1, heads=2,
                        negatives=20)
    torch.manual_seed(0)
    served = build_model("redrec", loaded, dim=16, text=HASH, width=32, layers=1, heads=2,
                         negatives=20, fresh_every=4)
    ranked = full_corpus(served, rows, ks=(3, 4))
    assert ranked["hr@3"] == 0.0 and ranked["hr@4"] == 1.0
    assert full_corpus(plain, rows, ks=(4,))["hr@4"] < 0.5
    with pytest.raises(ModelError, match="fresh_every needs the corpus's training cut-off"):
        build_model("redrec", base, dim=16, text=HASH, fresh_every=4)
    with pytest.raises(ModelError, match="fresh_every 1"):
        build_model("redrec", loaded, dim=16, text=HASH, fresh_every=1)
