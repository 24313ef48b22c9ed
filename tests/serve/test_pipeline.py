"""Serving reads a user as training did: the store's behaviours → the same user-tower rows."""

import numpy as np
import polars as pl
import pytest

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import BehaviourLog, Corpus, SequenceConfig, history_arrays
from snsrec.data.tables import load_tables
from snsrec.errors import DataError, ModelError
from snsrec.index.ann import merge_interests
from snsrec.serve.pipeline import Retriever, user_rows
from snsrec.serve.store import import_events, open_store

from .conftest import demo_layout, fresh_platform, live, stored


def test_user_rows_match_the_training_histories(tiny_world, tmp_path):
    tables = load_tables(tiny_world)
    log = BehaviourLog.from_tables(tables)
    now = int(np.quantile(log.ts, 0.8))
    corpus = Corpus.from_tables(tables, log, now)
    store = open_store(f"sqlite:{tmp_path / 's.sqlite'}")
    import_events(store, tables.events, until=now)
    seq = SequenceConfig(blocks={"feed": 12, "search": 6, "discover": 4, "ads": 3})
    users = np.unique(log.user[log.ts < now])[:25]
    for target in SCENARIOS:
        for u in users[:5] if target != "feed" else users:
            got, dropped = user_rows(store.behaviours(int(u), per_scenario=12), corpus,
                                     int(u), now, seq, target)
            want = history_arrays(log, np.array([u]), np.array([now]), seq)
            assert dropped == 0
            for k, v in want.items():
                np.testing.assert_array_equal(got[k], v, err_msg=f"user {u} {k}")
            assert got["target_scenario"].tolist() == [SCENARIOS.index(target)]


def test_behaviour_outside_the_corpus_is_counted_not_read(tiny_world):
    tables = load_tables(tiny_world)
    log = BehaviourLog.from_tables(tables)
    corpus = Corpus.from_tables(tables, log, int(log.ts.max()))
    known = int(corpus.note_ids[0])
    behaviours = {"clicks": [(known, "feed", 100), (10**12, "feed", 200)],
                  "queries": [(corpus.queries[0], 150), ("a query never seen", 160)]}
    rows, dropped = user_rows(behaviours, corpus, 1, 1_000, SequenceConfig(), "search")
    assert dropped == 2
    real = rows["hist_kind"][0] != 0
    assert real.sum() == 2 and rows["hist_item"][0][real].tolist() == [0, 0]
    assert pl.Series(rows["hist_kind"][0][real]).to_list() == [1, 2]    # note, then query


def test_retriever_serves_the_runs_top_notes_with_their_interest(redrec_run, tiny_world,
                                                                 tmp_path):
    r = Retriever(redrec_run, "flat")
    assert (redrec_run / "index-flat" / "index.faiss").is_file()
    tables = load_tables(tiny_world)
    store = open_store(f"sqlite:{tmp_path / 's.sqlite'}")
    import_events(store, tables.events)
    user = int(tables.events.select("user_id").head(1).collect().item())
    now = int(r.corpus.created.max()) + 1
    rows, _ = r.rows(store.behaviours(user, 16), user, now, "feed")
    got = r.retrieve(r.interests(rows), 20)
    interests = r.interests(rows)
    # The index searches the distinct interests (near-duplicates merged, as RED-Rec serves).
    distinct = interests[merge_interests(interests, 0.98)]
    exact = (r.vectors @ distinct.T).max(1)
    best = np.argsort(-exact, kind="stable")[:20]
    assert [c["note_id"] for c in got] == r.corpus.note_ids[best].tolist()
    assert np.allclose([c["score"] for c in got], exact[best], atol=1e-5)
    assert all(0 <= c["interest"] < len(interests) for c in got)
    seen = {got[0]["note_id"], got[3]["note_id"]}
    fewer = r.retrieve(r.interests(rows), 20, exclude=seen)
    assert len(fewer) == 20 and not seen & {c["note_id"] for c in fewer}
    assert Retriever(redrec_run, "flat").index is not None            # the saved index, loaded


def test_retriever_starts_from_the_saved_vectors_and_rebuilds_for_new_weights(
        redrec_run, tmp_path, capsys):
    """The corpus vectors are saved beside the index (a start does not run the text tower
    over the corpus); weights that changed since the index was built rebuild both."""
    import json
    import shutil

    import torch

    from snsrec.eval.protocols import corpus_vectors
    from snsrec.index.build import VECTORS
    from snsrec.runs import load_run

    run_dir = tmp_path / "run"
    shutil.copytree(redrec_run, run_dir, ignore=shutil.ignore_patterns("index-*"))
    run = load_run(run_dir)
    with torch.no_grad():
        exact = corpus_vectors(run.model, len(run.feature_map)).numpy()
    Retriever(run_dir, "flat")
    assert "building the flat index" in capsys.readouterr().err
    saved = np.load(run_dir / "index-flat" / VECTORS)
    np.testing.assert_array_equal(saved, exact)
    np.save(run_dir / "index-flat" / VECTORS, saved[::-1])     # served as saved, not recomputed
    assert np.array_equal(Retriever(run_dir, "flat").vectors, saved[::-1])
    assert "index:" not in capsys.readouterr().err
    from snsrec.index.build import saved_vectors

    with pytest.raises(ModelError, match="vectors for a corpus of"):
        saved_vectors(run_dir / "index-flat", len(saved) + 1)

    # Retrained in place: other weights → the index and the vectors are built again.
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights = load_file(run_dir / "model.safetensors")
    with safe_open(run_dir / "model.safetensors", "pt") as f:
        meta = f.metadata()
    head = next(k for k in weights if k.startswith("text.head") and k.endswith("weight"))
    weights[head] = weights[head] * 2.0
    save_file(weights, run_dir / "model.safetensors", metadata=meta)
    r = Retriever(run_dir, "flat")
    assert "built from other weights" in capsys.readouterr().err
    with torch.no_grad():
        fresh = corpus_vectors(load_run(run_dir).model, len(run.feature_map)).numpy()
    assert not np.allclose(fresh, exact)
    np.testing.assert_array_equal(r.vectors, fresh)
    serving = json.loads((run_dir / "index-flat" / "serving.json").read_text())
    assert len(serving["weights"]) == 32


def test_retriever_refuses_a_ranking_run(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ModelError, match="not found; is .* a run directory"):
        Retriever(tmp_path / "x")


def test_ranker_scores_a_request_as_training_scored_its_rows(tiny_world, tmp_path,
                                                            redrec_run):
    from snsrec.runs import load_run
    from snsrec.serve.pipeline import Ranker
    from snsrec.train.pipeline import RunConfig, model_inputs, train_run
    from snsrec.train.trainer import TrainConfig, Trainer

    cfg = RunConfig.model_validate({"name": "fm", "data": str(tiny_world),
                                    "model": {"name": "fm", "params": {"embedding_dim": 8}},
                                    "train": {"epochs": 1, "batch_size": 1024}})
    train_run(cfg, tmp_path / "fm")
    tables = load_tables(tiny_world)
    ranker = Ranker(tmp_path / "fm", tables)
    ev = tables.events.filter(pl.col("scenario") == "feed").head(200).collect()
    req = ev.filter(pl.col("request_id") == ev["request_id"][0])
    ts = int(req["ts"].dt.epoch("s")[0])
    got = ranker.score(int(req["user_id"][0]), req["note_id"].to_list(), "feed", ts)
    # The same rows through the training path, every row at position 0.
    frame = req.with_columns(pl.lit(0, pl.Int32).alias("position"))
    run = load_run(tmp_path / "fm")
    want = Trainer(TrainConfig()).predict(run.model, model_inputs(
        run.feature_map.transform(tables, frame)))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(got) == req.height and ((got > 0) & (got < 1)).all()
    with pytest.raises(ModelError, match="not a ranking run"):
        Ranker(redrec_run, tables)


def test_moderation_scores_and_threshold(tmp_path):
    from snsrec.serve.pipeline import Moderation

    pl.DataFrame({"note_id": [1, 2, 3], "p_harmful": [0.1, 0.5, 0.9]}).write_parquet(
        tmp_path / "m.parquet")
    m = Moderation.from_parquet(tmp_path / "m.parquet", threshold=0.5)
    assert [m.blocked(i) for i in (1, 2, 3, 4)] == [False, True, True, False]
    pl.DataFrame({"note_id": [1]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad.parquet: no column\(s\) p_harmful"):
        Moderation.from_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="threshold 0: give a probability"):
        Moderation(threshold=0)


def test_diversity_caps_topics_then_fills_in_order():
    from snsrec.serve.pipeline import diversify

    cands = [{"note_id": i} for i in range(6)]
    topic = {0: "food", 1: "food", 2: "food", 3: "travel", 4: "food", 5: "pets"}
    assert [c["note_id"] for c in diversify(cands, topic, 4, per_topic=2)] == [0, 1, 3, 5]
    assert [c["note_id"] for c in diversify(cands[:4], topic, 4, per_topic=1)] == [0, 3, 1, 2]
    with pytest.raises(DataError, match="per_topic 0"):
        diversify(cands, topic, 3, 0)


def test_platform_feed_end_to_end_and_it_adapts(served, tmp_path):
    from snsrec.serve.pipeline import Moderation, Platform

    store, notes, user, now = stored(served, tmp_path), served["notes"], served["user"], \
        served["now"]
    retriever = served["retriever"]
    free = Platform(store, retriever, served["ranker"], Moderation(), notes,
                    retrieve_k=60, per_topic=2)
    first = free.feed(user, 10, now)["items"]
    # The ads slot serves ads only (from its own index of the ad notes), the feed any note.
    ads = free.feed(user, 10, now, scenario="ads")["items"]
    assert len(ads) == 10 and all(i["is_ad"] for i in ads)
    assert sorted(free.ads_index.ids().tolist()) == sorted(n for n, c in notes.items()
                                                           if c["is_ad"])
    blocked = {first[0]["note_id"]: 0.99, first[1]["note_id"]: 0.7}
    p = Platform(store, retriever, free.ranker, Moderation(blocked, 0.5), notes,
                 retrieve_k=60, per_topic=2)
    out = p.feed(user, 10, now, show_filtered=True)
    items = out["items"]
    ids = [i["note_id"] for i in items]
    assert len(items) == 10 and len(set(ids)) == 10 and out["filtered"] == 2
    assert {f["note_id"] for f in out["filtered_items"]} == set(blocked)
    assert not set(ids) & (store.seen(user) | set(blocked))
    topics = [notes[i]["subcategory"] for i in ids]
    assert max(topics.count(t) for t in topics) <= 2
    assert all(0 < i["score"] < 1 and i["title"] == notes[i["note_id"]]["title"]
               for i in items)
    assert all(i["reason"]["because_scenario"] in SCENARIOS for i in items)
    assert all(i["reason"]["because_title"] == notes[i["reason"]["because_note"]]["title"]
               for i in items)
    # A click is an event: the clicked note is seen now and leaves the feed.
    store.add_events([{"event_id": 10**9, "user_id": user, "note_id": ids[0],
                       "scenario": "feed", "ts": now, "click": 1}])
    again = [i["note_id"] for i in p.feed(user, 10, now + 60)["items"]]
    assert ids[0] not in again
    store.delete_note(ids[1])                                        # a takedown
    assert ids[1] not in [i["note_id"] for i in p.feed(user, 10, now + 60)["items"]]


def test_an_overloaded_service_answers_503_with_retry_after_at_once(served, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from snsrec.serve.app import create_app

    user, now = served["user"], served["now"]
    app = create_app(fresh_platform(served, tmp_path), "s3cret", clock=lambda: now,
                     concurrency=1, queue_timeout=0.001)

    def feed(base):
        with httpx.Client(base_url=base, timeout=60) as c:
            return c.get("/v1/feed", params={"user_id": user, "k": 5})

    with live(app) as base:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(feed, [base] * 24))
        codes = [r.status_code for r in answers]
        assert set(codes) == {200, 503}, codes
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["Retry-After"] == "1" and "overloaded" in busy.json()["detail"]
        assert feed(base).status_code == 200                   # the line cleared
        assert 'route="/v1/feed",status="503"' in httpx.get(base + "/metrics").text
    with pytest.raises(ValueError, match="concurrency"):
        create_app(None, "s3cret", concurrency=0)


def test_the_service_over_http(served, tmp_path):
    import httpx

    from snsrec.serve.app import create_app

    notes, user, now = served["notes"], served["user"], served["now"]
    platform = fresh_platform(served, tmp_path)
    app = create_app(platform, "s3cret", clock=lambda: now)
    with live(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        feed = c.get("/v1/feed", params={"user_id": user, "k": 5}).json()
        ids = [i["note_id"] for i in feed["items"]]
        assert len(ids) == 5
        ev = {"event_id": 10**9, "user_id": user, "note_id": ids[0], "scenario": "feed",
              "click": 1}
        assert c.post("/v1/events", json={"events": [ev]}).status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        stray = {**ev, "event_id": 10**9 + 1, "note_id": 999_999_999}
        r = c.post("/v1/events", json={"events": [ev, stray]}, headers=auth)
        assert r.status_code == 422 and "events[1].note_id 999999999" in r.json()["detail"]
        r = c.post("/v1/events", json={"events": [ev, ev]}, headers=auth)
        assert r.json() == {"accepted": 1, "duplicates": 1}
        assert ids[0] not in [i["note_id"] for i in c.get(
            "/v1/feed", params={"user_id": user, "k": 5}).json()["items"]]
        assert c.get(f"/v1/notes/{ids[1]}").json()["title"] == notes[ids[1]]["title"]
        assert c.delete(f"/v1/notes/{ids[1]}", headers=auth).json()["deleted"] is True
        assert c.get(f"/v1/notes/{ids[1]}").status_code == 404
        assert c.delete("/v1/notes/999999999", headers=auth).status_code == 404
        # Bad input: 4xx with a message, never a 5xx.
        for bad in ({"user_id": user, "k": 0}, {"user_id": -1}, {"user_id": "x"},
                    {"user_id": user, "k": 10_000}):
            r = c.get("/v1/feed", params=bad)
            assert r.status_code == 422 and r.json()["detail"]
        for body in ({"events": []}, {"events": [{**ev, "scenario": "tv"}]},
                     {"events": [{**ev, "extra": 1}]}, {"nope": 1}):
            assert c.post("/v1/events", json=body, headers=auth).status_code == 422
        # Search, and a posted note found by it at once.
        q = {"user_id": user, "query": "travel food", "k": 4}
        found = c.post("/v1/search", json=q).json()
        assert found["query"] == "travel food" and len(found["items"]) == 4
        note = {"title": "Night market dumplings in Taipei",
                "hashtags": ["#Taipei", "taipei", " 夜市 "]}
        assert c.post("/v1/notes", json=note).status_code == 401
        r = c.post("/v1/notes", json=note, headers=auth)
        assert r.status_code == 201
        posted = r.json()["note_id"]
        stored = c.get(f"/v1/notes/{posted}").json()
        assert stored["title"] == note["title"] and stored["hashtags"] == ["taipei", "夜市"]
        hits = c.post("/v1/search", json={**q, "query": note["title"], "k": 20}).json()
        assert posted in [i["note_id"] for i in hits["items"]]
        for body in ({**q, "query": ""}, {**q, "query": "  "}, {**q, "k": 101},
                     {**q, "query": "x" * 257}, {**q, "extra": 1}, {"query": "a"}):
            r = c.post("/v1/search", json=body)
            assert r.status_code == 422 and r.json()["detail"], body
        for body in ({"title": ""}, {"title": "t", "hashtags": ["a"] * 21},
                     {"title": "t", "body": "b" * 10_001}, {"title": "t", "note_id": 3},
                     {"title": "t", "hashtags": ["#"]}, {"title": "t", "hashtags": ["a b"]}):
            assert c.post("/v1/notes", json=body, headers=auth).status_code == 422
        text = c.get("/metrics").text
        assert 'snsrec_requests_total{route="/v1/feed",status="200"} 2' in text
        assert "snsrec_events_stored" in text


def test_build_platform_from_a_demo_layout(served, redrec_run, tmp_path, monkeypatch, capsys):
    from snsrec.serve import service
    from snsrec.serve.service import build_platform

    demo = demo_layout(tmp_path / "demo", served, redrec_run)
    store = f"sqlite:{tmp_path / 'serve.sqlite'}"
    p = build_platform(demo, store, index_kind="flat")
    n = served["tables"].events.select(pl.len()).collect().item()
    assert p.store.count_events() == n                       # the world's history, loaded
    scores = pl.read_parquet(demo / "moderation.parquet")
    assert scores.height == len(served["notes"]) and scores["p_harmful"].is_between(0, 1).all()
    harmful = served["tables"].notes.filter(pl.col("harmful")).select("note_id").collect()
    assert np.mean([p.moderation.scores[i] for i in harmful["note_id"]]) > \
        np.mean(list(p.moderation.scores.values()))          # it finds the harmful notes
    feed = p.feed(served["user"], 5, served["now"])
    assert len(feed["items"]) == 5
    # A posted note is scored by the same baseline: a copy of a blocked note is blocked.
    worst = max(harmful["note_id"], key=lambda i: p.moderation.scores[i])
    src = served["tables"].notes.filter(pl.col("note_id") == worst).collect().row(0, named=True)
    got = p.post_note({"title": src["title"], "body": src["body"]}, served["now"])
    assert got["p_harmful"] == pytest.approx(p.moderation.scores[worst], abs=1e-5)
    assert got["blocked"] is (p.moderation.scores[worst] >= 0.5)
    weights = demo / "moderation-baseline.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = build_platform(demo, store, index_kind="flat")   # no second import
    assert again.store.count_events() == n
    assert weights.stat().st_mtime_ns == stamp                # the baseline is kept
    # One kept from another recipe (no metadata) is trained again, not trusted.
    from safetensors.torch import load_file, save_file

    save_file(load_file(weights), str(weights))
    # A big corpus: the baseline fits on a seeded sample of the training notes, and still
    # scores every note.
    monkeypatch.setattr(service, "BASELINE_MAX_NOTES", 50)
    capsys.readouterr()
    build_platform(demo, store, index_kind="flat")
    assert "the baseline fits on 50 of its training notes" in capsys.readouterr().err
    assert pl.read_parquet(demo / "moderation.parquet").height == len(served["notes"])
    from safetensors import safe_open

    # Serving learns from every note it has (no cut-off): no leak there.
    with safe_open(str(weights), "pt") as f:
        meta = f.metadata()
    assert meta["recipe"] == service.BASELINE_RECIPE and meta["before"] == ""
    assert meta["train_notes"] == "50"
    monkeypatch.setattr(service, "BASELINE_MAX_NOTES", 10**6)
    build_platform(demo, store, index_kind="flat")            # other notes: fitted again
    with safe_open(str(weights), "pt") as f:
        assert f.metadata()["train_notes"] == str(len(served["notes"]))
    with pytest.raises(ModelError, match="not a retrieval run"):
        build_platform(tmp_path, store)


def test_retrieval_widens_past_a_long_seen_list(served):
    r = served["retriever"]
    rows, _ = r.rows({"clicks": [], "queries": []}, 1, served["now"], "feed")
    ranked = [c["note_id"] for c in r.retrieve(r.interests(rows), len(r.corpus))]
    seen = set(ranked[:300])                       # the best 300 were all shown already
    got = [c["note_id"] for c in r.retrieve(r.interests(rows), 10, exclude=seen)]
    assert got == ranked[300:310]


def test_user_tower_answers_the_same_rows_from_its_cache_and_new_rows_afresh(served):
    import torch

    from snsrec.data.batches import to_tensors

    r, user, now = served["retriever"], served["user"], served["now"]
    rows, _ = r.rows({"clicks": [], "queries": []}, user, now, "feed")
    clicked = r.corpus.note_ids[:3].tolist()
    more, _ = r.rows({"clicks": [(n, "feed", now - 60 * i) for i, n in enumerate(clicked, 1)],
                      "queries": []}, user, now, "feed")
    first = r.interests(rows)
    assert r.interests(rows) is first                           # a lookup, not a forward
    later, _ = r.rows({"clicks": [], "queries": []}, user, now + 5, "feed")
    assert r.interests(later) is first                          # the time alone: the same
    with torch.no_grad():
        direct = r.model.user_vectors(to_tensors(more, "cpu"))[0].numpy()
    np.testing.assert_allclose(r.interests(more), direct, atol=1e-6)
    assert not np.allclose(r.interests(more), first)


def test_new_text_is_encoded_as_the_corpus_was(served):
    r = served["retriever"]
    np.testing.assert_allclose(r.encode(r.corpus.texts[:8]), r.vectors[:8], atol=1e-5)


def test_ranker_reads_the_stores_clicks_as_training_read_the_worlds(served, tmp_path):
    store, ranker = stored(served, tmp_path), served["ranker"]
    ev = served["tables"].events.filter(pl.col("scenario") == "feed").tail(400).collect()
    req = ev.filter(pl.col("request_id") == ev["request_id"][-1])
    user, ts = int(req["user_id"][0]), int(req["ts"].dt.epoch("s")[0])
    clicks = store.behaviours(user, 1000)["clicks"]
    world = ranker.score(user, req["note_id"].to_list(), "feed", ts)
    live = ranker.score(user, req["note_id"].to_list(), "feed", ts, clicks=clicks)
    np.testing.assert_allclose(live, world, rtol=1e-6)


def test_search_is_relevance_plus_the_users_interests(served, tmp_path):
    p = fresh_platform(served, tmp_path)
    user, now = served["user"], served["now"]
    query = served["tables"].queries.select("query").head(1).collect().item()
    out = p.search(user, query, 10, now)
    items = out["items"]
    assert out["query"] == query and len(items) == 10
    q = p.retriever.encode([query])[0]
    vec = p.retriever.vectors_of([i["note_id"] for i in items])
    np.testing.assert_allclose([i["relevance"] for i in items], vec @ q, atol=1e-5)
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    _, interests, _ = p._user(user, now, "search")
    want = vec @ q + 0.5 * (vec @ interests.T).max(1) + np.array([i["p_click"] for i in items])
    np.testing.assert_allclose([i["score"] for i in items], want, atol=1e-5)
    p.store.delete_note(items[0]["note_id"])
    assert items[0]["note_id"] not in [i["note_id"] for i in p.search(user, query, 10, now)
                                       ["items"]]
    with pytest.raises(DataError, match="scenario"):
        p.feed(user, 5, now, scenario="tv")


def test_a_posted_note_is_searchable_at_once_and_survives_a_restart(served, tmp_path):
    p = fresh_platform(served, tmp_path, personalize=0.0, click_weight=0.0)
    user, now = served["user"], served["now"]
    top = max(served["notes"])
    card = {"title": "Snorkelling off Okinawa with a seahorse", "body": "Reef day trip.",
            "hashtags": ["okinawa", "snorkel"], "author_id": user, "category": None,
            "subcategory": None, "language": "en"}
    got = p.post_note(card, now)
    assert got["note_id"] == top + 1 and got["title"] == card["title"]
    assert got["p_harmful"] is None and got["blocked"] is False       # no scorer: unscored
    text = "Snorkelling off Okinawa with a seahorse / Reef day trip. / #okinawa #snorkel"
    first = p.search(user, text, 5, now)["items"][0]
    assert first["note_id"] == got["note_id"]
    assert first["relevance"] == pytest.approx(1.0, abs=1e-5)
    assert p.post_note({**card, "title": "second"}, now)["note_id"] == top + 2
    # The ranker ranks it from its card; the feed can serve it like any note.
    assert 0 < p.ranker.score(user, [got["note_id"]], "feed", now)[0] < 1
    # A restarted server indexes the store's posted notes again and keeps counting.
    again = fresh_platform(served, tmp_path, personalize=0.0, click_weight=0.0)
    assert again.search(user, text, 5, now)["items"][0]["note_id"] == got["note_id"]
    assert again.next_id == top + 3
    # Two servers on one store (worker processes): ids never collide, and each takes in
    # what the other posted at its next request.
    third = p.post_note({**card, "title": "Night dive off Okinawa / #okinawa"}, now)
    assert third["note_id"] == top + 3
    assert again.post_note({**card, "title": "fourth"}, now)["note_id"] == top + 4
    found = again.search(user, "Night dive off Okinawa / #okinawa", 5, now)["items"]
    assert found[0]["note_id"] == third["note_id"]
    assert top + 4 not in p.notes
    p.feed(user, 5, now)                                     # any request takes it in
    assert top + 4 in p.notes and p.posted_upto == top + 4
