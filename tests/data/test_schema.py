import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snsrec.data.schema import EVENTS, SCHEMAS, conform, validate, validate_file
from snsrec.errors import DataError, SchemaError


def test_conform_casts_fills_and_keeps_extras():
    t = pa.table({"user_id": [1, 2], "note_id": pa.array([5, 6], pa.int32()),
                  "ts": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)],
                  "rating": [4.0, 2.0]})
    out = conform(t, "events")
    assert out.schema.names[: len(EVENTS)] == EVENTS.names
    assert out.schema.names[-1] == "rating"
    assert out.column("note_id").type == pa.int64()
    assert out.column("click").null_count == 2


def test_missing_required_column_is_named():
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['note_id'\]"):
        validate(pa.table({"user_id": [1]}), "events", "events.csv")


def test_wrong_type_is_named():
    t = pa.table({"user_id": ["a"], "note_id": [1]})
    with pytest.raises(SchemaError, match="column 'user_id' has type string"):
        validate(t, "events", "x")


def test_ctr_only_required_override():
    validate(pa.table({"click": [1, 0]}), "events", "criteo", required=("click",))


def test_unknown_kind_and_file_errors(tmp_path):
    with pytest.raises(SchemaError, match="unknown table kind"):
        validate(pa.table({"a": [1]}), "nope")
    with pytest.raises(DataError, match="not found"):
        validate_file(tmp_path / "n.parquet", "notes")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "n.parquet")
    with pytest.raises(SchemaError, match="note_id"):
        validate_file(tmp_path / "n.parquet", "notes")


def test_every_schema_has_an_id_column():
    assert set(SCHEMAS) == {"notes", "users", "events", "queries"}
