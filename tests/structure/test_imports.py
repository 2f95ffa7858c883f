"""The crate's structure: imports flow one way, with one deliberate exception."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import import_graph  # noqa: E402

# A `Pan` masks itself when printed (card/pan.rs uses card/mask.rs), and masking takes a `Pan`.
DELIBERATE = [[("card", "mask"), ("card", "pan")]]


def test_the_only_import_circle_is_the_deliberate_one():
    known = import_graph.modules()
    found = import_graph.circles(import_graph.imports(known))
    assert found == DELIBERATE, "import circles: " + "; ".join(
        " <-> ".join(import_graph.path(m, known) for m in component) for component in found
    )


def test_a_circle_is_found_when_there_is_one():
    graph = {("a",): {("b",)}, ("b",): {("c",)}, ("c",): {("a",)}, ("d",): {("a",)}}
    assert import_graph.circles(graph) == [[("a",), ("b",), ("c",)]]


LEAVES = [("identity",), ("token",), ("proto",), ("telemetry",), ("request_id",), ("hex",)]


def test_leaf_modules_import_nothing_above_the_domain():
    """Shared context types live in leaves, so every layer can use them."""
    graph = import_graph.imports(import_graph.modules())
    for leaf in LEAVES:
        above = {m for m in graph[leaf] if m[0] not in ("card", "proto") and m not in LEAVES}
        assert not above, f"{leaf} imports {above}"
