import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snsrec.config import load_config, validate_config
from snsrec.data.features import (
    ID_DTYPE,
    FeatureMap,
    FeatureSpec,
    SequenceSpec,
    default_spec,
    fit_from_dir,
    fit_vocab,
    histories,
)
from snsrec.data.schema import SCENARIOS
from snsrec.data.splits import split_events
from snsrec.data.tables import load_tables
from snsrec.errors import ConfigError, DataError, SchemaError

# make_data is a stateless function fixture, so sharing it across examples is safe.
PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
worlds = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000), "n_users": st.integers(2, 10),
    "n_requests": st.integers(5, 60), "slate": st.integers(1, 4),
    "click_p": st.sampled_from([0.0, 0.3, 0.8]),
})


def _fit(make_data, tmp_path_factory, params, spec=None):
    tables = load_tables(make_data(tmp_path_factory.mktemp("w"), **params))
    spec = spec or default_spec(tables)
    return tables, FeatureMap.fit(tables, spec)


def _spec_with_lengths(tables, lengths):
    spec = default_spec(tables)
    seqs = [SequenceSpec(name=f"hist_{s}", scenarios=[s], max_len=n)
            for s, n in zip(SCENARIOS, lengths, strict=True)]
    seqs.append(SequenceSpec(name="hist_all", scenarios=[], max_len=3))
    # The clicked notes' categories (DIN's category sequence), coded as `category` is.
    seqs.append(SequenceSpec(name="hist_category", scenarios=[], max_len=3,
                             attribute="category"))
    return spec.model_copy(update={"sequences": seqs})


@PROPERTY
@given(params=worlds, lengths=st.lists(st.integers(1, 4), min_size=4, max_size=4))
def test_histories_are_the_last_clicks_strictly_before(make_data, tmp_path_factory, params,
                                                       lengths):
    tables = load_tables(make_data(tmp_path_factory.mktemp("w"), **params))
    fmap = FeatureMap.fit(tables, _spec_with_lengths(tables, lengths))
    ev = tables.events.collect()
    out = fmap.transform(tables, ev)
    notes = dict(tables.notes.select("note_id", "category").collect().iter_rows())
    clicks = ev.filter(pl.col("click") == 1).sort(["ts", "event_id"]).rows(named=True)
    for q in fmap.spec.sequences:
        vocab = {v: i + 2 for i, v in enumerate(fmap.vocabs[q.share_vocab_with].values)}
        code = {n: vocab.get(notes.get(n), 1) for n in ev["note_id"]} \
            if q.attribute == "category" else vocab
        hist = out[q.name]
        assert hist.shape == (ev.height, q.max_len)
        for i, row in enumerate(ev.rows(named=True)):
            past = [c for c in clicks if c["user_id"] == row["user_id"] and c["ts"] < row["ts"]
                    and (not q.scenarios or c["scenario"] in q.scenarios)]
            want = [code.get(c["note_id"], 1) for c in past][-q.max_len:]
            assert hist[i].tolist() == [0] * (q.max_len - len(want)) + want
            # the property itself: every non-pad id is a click of this user strictly earlier
            earlier = {code.get(c["note_id"], 1) for c in past}
            assert set(hist[i][hist[i] > 0].tolist()) <= earlier


@PROPERTY
@given(params=worlds)
def test_oov_and_padding_are_consistent(make_data, tmp_path_factory, params):
    tables, fmap = _fit(make_data, tmp_path_factory, params)
    train = split_events(tables)["train"].collect()
    train_notes = set(train["note_id"].to_list())
    out = fmap.transform(tables, tables.events)
    for f in fmap.fields:
        x = out[f.name]
        if f.kind == "numeric":
            assert x.dtype == np.float32 and np.isfinite(x).all()
            continue
        assert x.dtype == ID_DTYPE
        low = 1 if f.kind == "categorical" else 0     # 0 only in empty multi/sequence slots
        assert x.min() >= low and x.max() < f.vocab_size, f.name
        if x.ndim == 2:   # padding only at the front: once an id appears, no 0 follows
            started = np.maximum.accumulate(x > 0, axis=1)
            assert not (started & (x == 0)).any(), f.name
    seen = np.isin(out["_note_id"], list(train_notes))
    assert (out["note_id"][~seen] == 1).all() and (out["note_id"][seen] >= 2).all()
    notes = tables.notes.collect()
    no_cat = set(notes.filter(pl.col("category").is_null())["note_id"].to_list())
    no_cat |= set(out["_note_id"].tolist()) - set(notes["note_id"].to_list())
    assert (out["category"][np.isin(out["_note_id"], list(no_cat))] == 1).all()
    empty = set(notes.filter(pl.col("hashtags").list.len() == 0)["note_id"].to_list())
    assert (out["hashtags"][np.isin(out["_note_id"], list(empty))] == 0).all()


@PROPERTY
@given(params=worlds)
def test_save_load_transform_is_identical(make_data, tmp_path_factory, params):
    tables, fmap = _fit(make_data, tmp_path_factory, params)
    path = tmp_path_factory.mktemp("fm") / "feature_map.json"
    fmap.save(path)
    again = FeatureMap.load(path)
    assert again.fields == fmap.fields and again.describe() == fmap.describe()
    for part in split_events(tables).values():
        a, b = fmap.transform(tables, part), again.transform(tables, part)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
            assert a[k].dtype == b[k].dtype
    again.save(path.with_name("again.json"))
    assert path.read_bytes() == path.with_name("again.json").read_bytes()


@PROPERTY
@given(params=worlds)
def test_transform_request_equals_transform_rows(make_data, tmp_path_factory, params):
    tables, fmap = _fit(make_data, tmp_path_factory, params)
    test = split_events(tables)["test"].collect()
    full = fmap.transform(tables, test)
    for rid in test["request_id"].unique().sort().to_list()[:5]:
        rows = np.flatnonzero(full["_request_id"] == rid)
        req = test[rows.tolist()]
        request = {"user_id": req["user_id"][0], "note_ids": req["note_id"].to_list(),
                   "scenario": req["scenario"][0], "ts": req["ts"][0],
                   "position": req["position"].to_list(), "request_id": rid}
        one = fmap.transform_request(tables, request)
        assert set(one) == set(full) - set(fmap.spec.labels)
        for k, v in one.items():
            np.testing.assert_array_equal(v, full[k][rows], err_msg=k)


@PROPERTY
@given(params=worlds, lengths=st.lists(st.integers(1, 4), min_size=4, max_size=4))
def test_request_encoder_equals_transform_rows(make_data, tmp_path_factory, params, lengths):
    """The server's encoder (tables encoded once, histories from a store's clicks) gives
    ``transform``'s arrays row for row — before and after notes are added."""
    tables = load_tables(make_data(tmp_path_factory.mktemp("w"), **params))
    fmap = FeatureMap.fit(tables, _spec_with_lengths(tables, lengths))
    enc = fmap.request_encoder(tables)
    test = split_events(tables)["test"].collect()
    full = fmap.transform(tables, test)
    ev = tables.events.collect()
    want = set(full) - set(fmap.spec.labels) - {k for k in full if k.startswith("_")}

    def check(encoder, full, test):
        for rid in test["request_id"].unique().sort().to_list()[:4]:
            rows = np.flatnonzero(full["_request_id"] == rid)
            req = test[rows.tolist()]
            user = req["user_id"][0]
            request = {"user_id": user, "note_ids": req["note_id"].to_list(),
                       "scenario": req["scenario"][0], "ts": req["ts"][0],
                       "position": req["position"].to_list(), "request_id": rid}
            clicks = ev.filter((pl.col("user_id") == user) & (pl.col("click") == 1)).sort(
                "ts", "event_id")
            clicks = list(zip(clicks["note_id"].to_list(), clicks["scenario"].to_list(),
                              clicks["ts"].dt.epoch("s").to_list(), strict=True))
            for given_clicks in (clicks, None):
                one = encoder.transform(request, given_clicks)
                assert set(one) == want
                for k, v in one.items():
                    np.testing.assert_array_equal(v, full[k][rows], err_msg=k)

    check(enc, full, test)
    # Notes added (one past the last id: appended; one replacing a row: rebuilt) are
    # encoded as if the tables had held them.
    notes = tables.notes.collect()
    last = notes.sort("note_id").row(-1, named=True)
    changed = {**notes.row(0, named=True), "category": last["category"]}
    added = {**last, "note_id": last["note_id"] + 1}
    enc.add_rows("notes", [added])
    enc.add_rows("notes", [changed])
    from dataclasses import replace

    more = replace(tables, notes=pl.concat([
        notes.filter(pl.col("note_id") != changed["note_id"]),
        pl.DataFrame([changed, added], schema=notes.schema)]).lazy())
    test = test.with_columns(pl.when(pl.col("event_id") % 2 == 0).then(added["note_id"])
                             .otherwise(pl.col("note_id")).alias("note_id"))
    check(enc, fmap.transform(more, test), test)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), huge=st.booleans())
def test_histories_survive_sparse_ids_and_huge_time_spans(seed, huge):
    """Non-dense user ids and spans that would overflow an int64 (user, ts) key."""
    rng = np.random.default_rng(seed)
    m, n, scale = 40, 30, (10**17 if huge else 1)
    users = rng.choice([5, 10**15, 3 * 10**15, 7], m)
    ts = rng.integers(0, 20, m)
    o = np.lexsort((ts, users))
    c_user, c_ts, code = users[o], ts[o], rng.integers(2, 50, m)
    e_user, e_ts = rng.choice([5, 10**15, 3 * 10**15, 7, 8], n), rng.integers(-2, 23, n)
    ok = rng.random(n) < 0.9
    got = histories(c_user, c_ts * scale, code, e_user, e_ts * scale, ok, 4)
    for i in range(n):
        want = [int(c) for u, t, c in zip(c_user, c_ts, code, strict=True)
                if ok[i] and u == e_user[i] and t < e_ts[i]][-4:]
        assert got[i].tolist() == [0] * (4 - len(want)) + want


def test_vocab_orders_by_count_then_value_and_applies_min_count():
    s = pl.Series(["b", "a", "b", "c", "a", "b", None, None, None, "d"])
    assert fit_vocab(s, np.ones(len(s), np.int64), 1).values == ["b", "a", "c", "d"]
    assert fit_vocab(s, np.ones(len(s), np.int64), 2).values == ["b", "a"]
    # weights: a note-level value counts once per training impression
    assert fit_vocab(pl.Series([1, 2, 3]), np.array([1, 5, 0]), 1).values == [2, 1]


def test_numeric_statistics_come_from_train(make_data, tmp_path):
    tables = load_tables(make_data(tmp_path / "w", n_requests=200))
    fmap = FeatureMap.fit(tables)
    train = fmap.transform(tables, split_events(tables)["train"])
    assert abs(train["hour_of_day"].mean()) < 1e-4
    assert abs(train["hour_of_day"].std() - 1) < 1e-3
    edges = fmap.stats["note_age_hours"]["edges"]
    assert edges == sorted(edges) and len(edges) <= 15
    field = next(f for f in fmap.fields if f.name == "note_age_hours")
    assert field.kind == "categorical" and field.vocab_size == len(edges) + 3
    # notes without a notes row have no created_at: their age is missing -> OOV bucket
    missing = np.isin(train["_note_id"], [998, 999])
    assert (train["note_age_hours"][missing] == 1).all()
    assert (train["note_age_hours"][~missing] >= 2).all()


def test_default_spec_fits_the_world(make_data, tmp_path):
    fmap = FeatureMap.fit(load_tables(make_data(tmp_path / "w")))
    names = [f.name for f in fmap.fields]
    assert names[:3] == ["user_id", "note_id", "author_id"]
    assert "subcategory" not in names        # all null in the hand-made notes
    assert [n for n in names if n.startswith("hist_")] == [f"hist_{s}" for s in SCENARIOS]
    assert fmap.describe().startswith(f"{len(names)} fields (11 categorical, 1 numeric, "
                                      f"1 multi, 4 sequence), ")


def test_default_spec_of_an_import_uses_its_columns(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    ev = pl.read_parquet(root / "events.parquet")
    ev = ev.with_columns(ts=None, scenario=None, position=None, C1=pl.col("note_id") % 3,
                         I1=pl.col("event_id").cast(pl.Float64),
                         split=pl.Series(["train", "valid", "test"] * 80))
    ev.write_parquet(root / "events.parquet")
    (root / "notes.parquet").unlink()
    (root / "users.parquet").unlink()
    (root / "world.json").rename(root / "dataset.json")
    (root / "dataset.json").write_text(json.dumps({"split": {"column": "split"}}))
    tables = load_tables(root)
    spec = default_spec(tables)
    assert [c.name for c in spec.categorical] == ["user_id", "note_id", "C1"]
    assert [n.name for n in spec.numeric] == ["I1"] and spec.sequences == []
    out = FeatureMap.fit(tables, spec).transform(tables, split_events(tables)["test"])
    assert out["C1"].shape == (80,) and out["I1"].dtype == np.float32


def test_missing_column_is_named_with_its_table(make_data, tmp_path):
    tables = load_tables(make_data(tmp_path / "w"))
    spec = FeatureSpec()          # the world spec asks for users.age_bucket, which is null here
    spec.categorical[0].column = "users.income"
    with pytest.raises(SchemaError, match=r"users.parquet: column 'income' of the users table"):
        FeatureMap.fit(tables, spec)
    tables.notes = None
    with pytest.raises(SchemaError, match="table 'notes' is missing"):
        FeatureMap.fit(tables, FeatureSpec())


def test_spec_errors_are_config_errors(tmp_path):
    bad = tmp_path / "features.yaml"
    for text, msg in [("labls: [click]", "unknown key 'labls'; did you mean 'labels'"),
                      ("categorical: [{name: x, column: events.user_id, min_cout: 2}]",
                       "unknown key 'categorical.0.min_cout'")]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_config(FeatureSpec, bad)
    for data, msg in [({"numeric": [{"name": "n", "column": "price"}]}, "neither table.column"),
                      ({"labels": ["click", "click"]}, "unique"),
                      ({"categorical": [], "sequences": [{"name": "h"}]}, "not a categorical"),
                      ({"sequences": [{"name": "h", "attribute": "user_id"}]},
                       "'user_id', which is not a categorical feature of a notes column"),
                      ({"sequences": [{"name": "h", "attribute": "category",
                                       "share_vocab_with": "note_id"}]},
                       "drop share_vocab_with or set it to 'category'")]:
        with pytest.raises(ConfigError, match=msg):
            validate_config(FeatureSpec, data, "features.yaml")


def test_corrupt_feature_map_is_a_data_error(make_data, tmp_path):
    path = tmp_path / "feature_map.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        FeatureMap.load(path)
    path.write_text(json.dumps({"format": "snsrec.feature_map", "spec": {}, "vocabs": {}}))
    with pytest.raises(DataError, match="not a valid feature map"):
        FeatureMap.load(path)
    with pytest.raises(DataError, match="file not found"):
        FeatureMap.load(tmp_path / "missing.json")


def test_fit_from_dir_applies_the_yaml_over_the_defaults(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    cfg = tmp_path / "features.yaml"
    cfg.write_text("labels: [click, like]\nsequences:\n  - {name: h, scenarios: [], max_len: 7}\n")
    fmap = fit_from_dir(root, cfg)
    assert fmap.spec.labels == ["click", "like"]
    assert [(f.name, f.max_len) for f in fmap.fields if f.kind == "sequence"] == [("h", 7)]
    out = fmap.transform(load_tables(root), load_tables(root).events)
    assert out["like"].dtype == np.float32 and out["h"].shape == (240, 7)


def test_tiny_world_end_to_end(tiny_world, tmp_path):
    fmap = fit_from_dir(tiny_world)
    assert fmap.describe().startswith("19 fields (13 categorical, 1 numeric, 1 multi, 4 sequence)")
    fmap.save(tmp_path / "feature_map.json")
    fmap = FeatureMap.load(tmp_path / "feature_map.json")
    tables = load_tables(tiny_world)
    test = split_events(tables)["test"].collect()
    out = fmap.transform(tables, test)
    assert all(len(v) == test.height for v in out.values())
    assert (out["hist_feed"] > 0).any() and (out["hist_search"] > 0).any()
    # no future: every history id is a click of the same user strictly earlier
    clicks = tables.events.filter(pl.col("click") == 1).collect()
    code = {v: i + 2 for i, v in enumerate(fmap.vocabs["note_id"].values)}
    by_user: dict[int, list] = {}
    for u, t, n in clicks.select("user_id", "ts", "note_id").iter_rows():
        by_user.setdefault(u, []).append((t, code.get(n, 1)))
    for i in np.random.default_rng(0).choice(test.height, 100, replace=False):
        u, t = test["user_id"][int(i)], test["ts"][int(i)]
        earlier = {c for ct, c in by_user.get(u, []) if ct < t}
        for name in ("hist_feed", "hist_search", "hist_discover", "hist_ads"):
            assert set(out[name][i][out[name][i] > 0].tolist()) <= earlier
    rid = int(out["_request_id"][0])
    rows = np.flatnonzero(out["_request_id"] == rid)
    req = test[rows.tolist()]
    one = fmap.transform_request(tables, {
        "user_id": req["user_id"][0], "note_ids": req["note_id"].to_list(),
        "scenario": req["scenario"][0], "ts": req["ts"][0].isoformat(),
        "position": req["position"].to_list(), "query": req["query"][0], "request_id": rid})
    for k, v in one.items():
        np.testing.assert_array_equal(v, out[k][rows], err_msg=k)


def _vector_table(path, note_ids, dim=3, seed=0):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vecs = np.random.default_rng(seed).normal(size=(len(note_ids), dim)).astype(np.float32)
    pq.write_table(pa.table({"note_id": note_ids, "vector": vecs.tolist()}), path)
    return dict(zip(note_ids, vecs, strict=True))


def test_vector_fields_cover_every_note_in_the_table_and_round_trip(tiny_world, tmp_path):
    from snsrec.data.features import VectorSpec

    tables = load_tables(tiny_world)
    notes = tables.notes.select("note_id").collect()["note_id"].to_list()
    table = _vector_table(tmp_path / "vec.parquet", notes[:-5])     # five notes without one
    spec = default_spec(tables).model_copy(update={
        "vectors": [VectorSpec(name="note_vec", path=tmp_path / "vec.parquet")],
        "sequences": [SequenceSpec(name="hist_vec", max_len=4, share_vocab_with="note_vec")]})
    spec = FeatureSpec.model_validate(spec.model_dump())
    splits = split_events(tables)
    fmap = FeatureMap.fit(tables, spec, train=splits["train"])
    (field,) = [f for f in fmap.fields if f.kind == "vector"]
    assert field.dim == 3 and field.vocab_size == len(notes) - 5 + 2
    assert "1 vector" in fmap.describe()
    test = splits["test"].collect()
    out = fmap.transform(tables, test)
    vec = fmap.vectors["note_vec"]
    assert not vec[:2].any()                                # padding and OOV: zero
    # every test row's note gets its table vector, also notes no training row showed
    train_notes = set(splits["train"].collect()["note_id"].to_list())
    rows = [i for i, n in enumerate(test["note_id"].to_list()) if n in table]
    assert any(test["note_id"][i] not in train_notes for i in rows)
    for i in rows:
        np.testing.assert_array_equal(vec[out["note_vec"][i]], table[test["note_id"][i]])
    missing = [i for i, n in enumerate(test["note_id"].to_list()) if n not in table]
    assert all(out["note_vec"][i] == 1 for i in missing)
    assert ((out["hist_vec"] == 0) | (out["hist_vec"] >= 1)).all() and (out["hist_vec"] > 1).any()
    fmap.save(tmp_path / "fm.json")
    back = FeatureMap.load(tmp_path / "fm.json")
    np.testing.assert_array_equal(back.vectors["note_vec"], vec)
    np.testing.assert_array_equal(back.transform(tables, test)["note_vec"], out["note_vec"])
    (tmp_path / "fm.vectors.npz").unlink()
    with pytest.raises(DataError, match="not a valid feature map"):
        FeatureMap.load(tmp_path / "fm.json")


def test_a_missing_or_malformed_vector_table_is_named(tiny_world, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from snsrec.data.features import VectorSpec

    tables = load_tables(tiny_world)
    spec = default_spec(tables)
    for table, needle in ((None, "no such vector table"),
                          (pa.table({"id": [1]}), "no column 'note_id'"),
                          (pa.table({"note_id": [1, 2], "vector": [[1.0], [1.0, 2.0]]}),
                           "one vector size"),
                          (pa.table({"note_id": [1, 1], "vector": [[1.0], [2.0]]}),
                           "repeated ids")):
        path = tmp_path / f"{len(needle)}.parquet"
        if table is not None:
            pq.write_table(table, path)
        bad = spec.model_copy(update={"vectors": [VectorSpec(name="v", path=path)]})
        with pytest.raises((DataError, SchemaError), match=needle):
            FeatureMap.fit(tables, bad)
    with pytest.raises(ValueError, match="not a categorical or vector"):
        FeatureSpec.model_validate({"sequences": [{"name": "h", "share_vocab_with": "nope"}]})
