"""`snsrec report docs`: marked tables are rendered from their records, and the repository's
own docs are exactly what their committed records render."""

from __future__ import annotations

import subprocess

import pytest

from snsrec.bench.index import bench_index
from snsrec.cli import main
from snsrec.errors import DataError
from snsrec.records import REPO_ROOT, provenance_line
from snsrec.report.docs import (
    default_files,
    render_block,
    render_docs,
    tables,
    unrecorded_tables,
)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """A real benchmark record: `bench index` at toy size, under ROOT/bench/index."""
    root = tmp_path_factory.mktemp("repo")
    res = bench_index(root / "bench" / "index", items=1000, dim=8, users=5, k=50, clusters=20,
                      kinds=["flat", "hnsw"])
    return root, res


def test_a_block_is_the_records_own_table_and_its_provenance(record):
    root, res = record
    body = render_block("bench/index/index.json table=1", root)
    assert body.startswith(tables(res["markdown"])[0][1])
    assert body.rstrip().endswith(provenance_line(res)) and "`snsrec" in body
    assert render_block("bench/index/index.json heading='ANN index'", root) == body


def test_render_replaces_stale_numbers_and_check_reports_them(record):
    root, _ = record
    (root / "docs").mkdir(exist_ok=True)
    doc = root / "docs" / "page.md"
    stale = "# Page\n<!-- record bench/index/index.json table=1 -->\n| a |\n|---|\n| stale 9.999 |\n" \
            "<!-- /record -->\ntext after\n"
    doc.write_text(stale)
    assert render_docs([doc], check=True) == [doc]
    assert doc.read_text() == stale                             # --check changes nothing
    assert render_docs([doc]) == [doc]
    fresh = doc.read_text()
    assert "| stale 9.999 |" not in fresh and fresh.count("| hnsw |") == 1 and fresh.endswith("<!-- /record -->\ntext after\n")
    assert render_docs([doc], check=True) == []     # rendered: nothing differs
    with pytest.raises(SystemExit) as e:
        main(["report", "docs", str(doc), "--check"])
    assert e.value.code == 0


def test_markers_shown_in_fenced_code_are_left_alone(record):
    from snsrec.report.docs import render_text

    root, _ = record
    shown = "```\n<!-- record bench/index/index.json table=1 -->\n...\n<!-- /record -->\n```\n"
    assert render_text(shown, root) == shown


def test_bad_markers_are_one_line_errors(record, tmp_path):
    (tmp_path / "lost.md").write_text("<!-- record bench/index/index.json table=1 -->\n"
                                      "<!-- /record -->\n")
    with pytest.raises(DataError, match="no bench/ folder above it"):
        render_docs([tmp_path / "lost.md"])
    root, _ = record
    with pytest.raises(DataError, match="file not found"):
        render_block("bench/nope/x.json table=1", root)
    with pytest.raises(DataError, match="no table 9"):
        render_block("bench/index/index.json table=9", root)
    with pytest.raises(DataError, match="give heading=TEXT, table=N or view=NAME"):
        render_block("bench/index/index.json", root)


def test_tables_typed_by_hand_are_found():
    text = ("<!-- record x table=1 -->\n| a |\n|---|\n| 0.5 |\n<!-- /record -->\n\n"
            "| model | AUC |\n|---|---|\n| lr | 0.73 |\n\n| name | kind |\n|---|---|\n| lr | x |\n"
            "```\n| shown | 0.1 |\n```\n")
    assert unrecorded_tables(text) == ["| model | AUC |"]


def test_the_docs_are_what_their_records_render():
    """Every measured table of README.md and docs/*.md is rendered from a committed record
    (`snsrec report docs` leaves them unchanged) and none is typed by hand."""
    assert render_docs(check=True) == []
    for path in default_files():
        assert unrecorded_tables(path.read_text(encoding="utf-8")) == [], path


def test_every_cited_record_is_in_git():
    import re

    tracked = set(subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "bench"],
                                 capture_output=True, text=True, check=True).stdout.split())
    for path in default_files():
        cited = set(re.findall(r"bench/[A-Za-z0-9_./-]+\.(?:json|md)", path.read_text()))
        assert cited <= tracked, (path, sorted(cited - tracked))
