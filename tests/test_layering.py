"""The package map stays as designed: no import circles, `nlu` a pure library, the core never reaching
the worker side. Imports are read from the source (every `import`, at the top or inside a function),
so a lazy import that closes a circle counts like any other."""
import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chatbot", "nlu", "inference")
# `nlu` is a library of models: frameworks and the project's own packages stay outside it.
NLU_FORBIDDEN = {"django", "channels", "channels_redis", "celery", "kombu", "daphne", "redis", "chatbot", "inference"}
CORE, WORKERS = "chatbot", "inference"


def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `packages` under `root` (migrations left out)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every absolute name module `name` imports; `from p import m` names p.m, not p, when m is a module."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                names.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return names


def graph(root: Path = ROOT, packages=PACKAGES) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> project modules it imports, module -> top-level names of everything it imports)."""
    known = modules(root, packages)
    edges, tops = defaultdict(set), defaultdict(set)
    for name, path in known.items():
        for imported in imports(name, path, known):
            tops[name].add(imported.split(".")[0])
            parts = imported.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts and ".".join(parts) != name:
                edges[name].add(".".join(parts))
    return edges, tops


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(set(edges) | {n for targets in edges.values() for n in targets}):
        if node not in index:
            visit(node)
    return found


def package_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    packages = defaultdict(set)
    for source, targets in edges.items():
        for target in targets:
            if source.split(".")[0] != target.split(".")[0]:
                packages[source.split(".")[0]].add(target.split(".")[0])
    return packages


@pytest.fixture(scope="module")
def project():
    return graph()


def test_no_module_imports_another_in_a_circle(project):
    edges, _ = project
    assert cycles(edges) == []


def test_no_package_imports_another_in_a_circle(project):
    edges, _ = project
    assert cycles(package_edges(edges)) == []


def test_nlu_is_a_library_without_frameworks_or_project_packages(project):
    _, tops = project
    offending = {name: sorted(tops[name] & NLU_FORBIDDEN) for name in tops
                 if name.split(".")[0] == "nlu" and tops[name] & NLU_FORBIDDEN}
    assert offending == {}


def test_the_core_never_imports_the_worker_side(project):
    edges, _ = project
    offending = {name: sorted(t for t in targets if t.split(".")[0] == WORKERS)
                 for name, targets in edges.items() if name.split(".")[0] == CORE}
    assert {name: targets for name, targets in offending.items() if targets} == {}


def test_nlu_is_not_a_django_app():
    from django.conf import settings

    assert "nlu" not in settings.INSTALLED_APPS


def test_the_walk_finds_a_planted_circle_and_a_lazy_import(tmp_path):
    """The checks above can fail: a circle closed by an import inside a function is found."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (package / "c.py").write_text("from pkg import a\n")
    edges, tops = graph(tmp_path, ("pkg",))
    assert cycles(edges) == [["pkg.a", "pkg.sub.b"]]
    assert "pkg" not in edges["pkg.c"] and edges["pkg.c"] == {"pkg.a"}
    assert tops["pkg.a"] == {"pkg"}
