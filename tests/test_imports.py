"""The dependency graph of snsrec's modules has no cycle: every import statement counts,
function-level ones too (they hide a circle, they do not remove it)."""

from __future__ import annotations

import graphlib

from snsrec.records import REPO_ROOT, _imports


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / "snsrec").rglob("*.py")):
        name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(
            ".__init__")
        # A module's own package runs before it: that edge is Python's, not a dependency.
        graph[name] = {m for m in _imports(path, name)
                       if m != name and not name.startswith(m + ".")}
    return graph


def test_no_import_cycle_inside_snsrec():
    try:
        order = list(graphlib.TopologicalSorter(_graph()).static_order())
    except graphlib.CycleError as e:
        raise AssertionError(f"import cycle: {' → '.join(e.args[1])}") from None
    assert "snsrec.cli" in order and "snsrec.runs" in order


def test_a_cycle_would_be_found():
    graph = _graph()
    graph["snsrec.io"] = graph["snsrec.io"] | {"snsrec.runs"}      # runs imports io
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError:
        return
    raise AssertionError("a planted cycle was not found")
