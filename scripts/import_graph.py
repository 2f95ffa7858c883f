#!/usr/bin/env python3
"""The crate's module import graph, read from the source: which files of src/ name items of
which others (`use crate::...`, `use super::...`, and paths written inline), and the import
circles among them.

    python3 scripts/import_graph.py            # the circles, and each file's imports
    python3 scripts/import_graph.py --circles  # the circles only

A circle is a set of files that import each other, directly or through others: a change to any
of them may need the others. The one circle the design keeps is card/mask.rs <-> card/pan.rs (a
`Pan` masks itself when printed); tests/structure/test_imports.py fails on any other.

It reads text, not the compiler's view: a path in a string counts too, and a name that a
mod.rs re-exports counts as an import of that mod.rs.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# `crate::a::b`, `super::a`, `super::super::a`, and `use crate::{a, b::c}` groups.
PATH = re.compile(r"\b(crate|super)((?:::(?:super|[a-z_][a-z0-9_]*))*)(::\{[^;]*?\})?", re.S)
COMMENT = re.compile(r"//[^\n]*")
# Unit tests sit at the end of a file, in `mod tests`: their `super` is the file itself, and
# what they import is not the module's structure.
TESTS = re.compile(r"#\[cfg\(test\)\]\s*mod tests\b.*", re.S)


def module_of(file: Path) -> tuple[str, ...]:
    """The module path of a source file: src/bins/index.rs -> ("bins", "index")."""
    parts = file.relative_to(SRC).with_suffix("").parts
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def modules() -> dict[tuple[str, ...], Path]:
    return {module_of(f): f for f in sorted(SRC.rglob("*.rs"))}


def resolve(segments: list[str], known: dict) -> tuple[str, ...] | None:
    """The longest prefix of `segments` that is a module file."""
    for end in range(len(segments), -1, -1):
        if tuple(segments[:end]) in known:
            return tuple(segments[:end])
    return None


def imports(known: dict) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    """For each module file, the other module files it names."""
    graph = {}
    for module, file in known.items():
        text = TESTS.sub("", COMMENT.sub("", file.read_text()))
        # A file's own `super` is its parent module; for mod.rs files the module itself is
        # the directory, so `super` is one level up from that.
        targets = set()
        for root, rest, group in PATH.findall(text):
            segments = [s for s in rest.split("::") if s]
            base = [] if root == "crate" else list(module[:-1])
            while segments and segments[0] == "super":
                base = base[:-1]
                segments = segments[1:]
            tails = [segments]
            if group:
                tails = [
                    segments + [s for s in item.strip().split("::") if s and s != "self"]
                    for item in group.strip(":{} \n").split(",")
                    if item.strip()
                ]
            for tail in tails:
                target = resolve(base + [t for t in tail if re.fullmatch(r"[a-z_][a-z0-9_]*", t)], known)
                if target is not None and target != module and target != ():
                    targets.add(target)
        graph[module] = targets
    return graph


def circles(graph: dict) -> list[list[tuple[str, ...]]]:
    """The strongly connected components of more than one file (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def path(module, known) -> str:
    return str(known[module].relative_to(SRC.parent))


def main(argv: list[str]) -> int:
    known = modules()
    graph = imports(known)
    found = circles(graph)
    if "--circles" not in argv:
        for module in sorted(graph):
            names = ", ".join(path(t, known) for t in sorted(graph[module])) or "-"
            print(f"{path(module, known)} -> {names}")
        print()
    print(f"{len(found)} import circle(s)")
    for component in found:
        print("  " + " <-> ".join(path(m, known) for m in component))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
