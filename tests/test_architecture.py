"""Rules of the code base, checked on the source (an AST walk of app/, no import is executed):

(a) app/study, app/pipeline and app/audit never import Qt (PySide6, shiboken6, qtawesome) or
    app/ui, anywhere: function-level imports included, TYPE_CHECKING included;
(b) no import cycles between app modules, function-level imports included (only imports under
    ``if TYPE_CHECKING:`` are left out, they never run);
(c) no module in app/ is over 500 lines;
(d) nothing in app/ or benchmarks/ imports the ``tests`` package.

The checker's own tests at the bottom run it on small synthetic packages, so a checker that
finds nothing cannot pass silently.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QT_MODULES = frozenset({"PySide6", "shiboken6", "qtawesome"})
QT_FREE_PACKAGES = ("app.study", "app.pipeline", "app.audit", "app.pacs")
MAX_LINES = 500
# The one direction of imports: a package may import only the layers listed for it (and itself).
# study <- pipeline <- audit <- (ui, cli); devtools (test/bench tooling) sits on pipeline.
LAYERS: dict[str, frozenset[str]] = {
    "app.study": frozenset(),
    "app.pipeline": frozenset({"app.study"}),
    "app.audit": frozenset({"app.study", "app.pipeline"}),
    "app.devtools": frozenset({"app.study", "app.pipeline"}),
    "app.pacs": frozenset({"app.study"}),
    "app.dicom_export": frozenset({"app.study", "app.pipeline", "app.audit"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted name."""

    source: str  # importing module
    target: str  # imported module (or ``pkg.name`` for ``from pkg import name``)
    path: Path
    lineno: int
    text: str  # the source line, for the failure message
    type_checking: bool  # under ``if TYPE_CHECKING:``


def module_map(root: Path, package: str = "app") -> dict[str, Path]:
    """Dotted module name -> file for every .py under ``root/package`` (``__init__`` = the package)."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import in the file, at any depth (functions, methods, try/if blocks)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str, node: ast.stmt | ast.expr, tc: bool) -> None:
        text = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
        found.append(Import(module, target, path, node.lineno, text, tc))

    def visit(node: ast.AST, tc: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, tc)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, tc)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module or ""
            )
            for alias in node.names:
                # ``from pkg import name``: the submodule pkg.name when there is one, else pkg
                # (the caller decides which exists); "*" imports the package itself.
                add(base if alias.name == "*" else f"{base}.{alias.name}", node, tc)
        elif isinstance(node, ast.Call):
            # importlib.import_module("x") / __import__("x") with a literal name.
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    add(node.args[0].value, node, tc)
        for child in ast.iter_child_nodes(node):
            visit(child, tc)

    visit(tree, False)
    return found


def resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The app module an import target runs: itself, or for ``pkg.name`` (a non-module name) ``pkg``."""
    if target in modules:
        return target
    parent = target.rpartition(".")[0]
    return parent if parent in modules else None


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, Import]]:
    """module -> {imported app module: first import statement}, TYPE_CHECKING imports left out."""
    graph: dict[str, dict[str, Import]] = {m: {} for m in modules}
    for module, path in modules.items():
        for imp in imports_of(module, path):
            if imp.type_checking:
                continue
            target = resolve(imp.target, modules)
            if target is not None and target != module:
                graph[module].setdefault(target, imp)
    return graph


def find_cycles(graph: dict[str, dict[str, Import]]) -> list[list[Import]]:
    """One cycle (as its chain of import statements) per strongly connected component of size > 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:  # Tarjan; recursion depth stays far below the limit for app/
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    cycles = []
    for comp in components:
        members = set(comp)
        start = comp[0]
        # Shortest path start -> ... -> start inside the component (BFS).
        prev: dict[str, str] = {}
        queue = [start]
        seen = {start}
        end = None
        while queue and end is None:
            nxt = []
            for v in queue:
                for w in sorted(graph[v]):
                    if w == start:
                        end = v
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if end is not None:
                    break
            queue = nxt
        assert end is not None
        path = [end]
        while path[-1] != start:
            path.append(prev[path[-1]])
        path.reverse()
        path.append(start)
        cycles.append([graph[a][b] for a, b in zip(path, path[1:])])
    return cycles


def describe_cycle(cycle: list[Import]) -> str:
    """``a -> b -> a`` and, per step, the import line that makes it."""
    chain = " -> ".join([i.source for i in cycle] + [cycle[0].source])
    steps = "\n".join(f"    {i.source}: {i.path}:{i.lineno}: {i.text}" for i in cycle)
    return f"  {chain}\n{steps}"


def qt_imports(modules: dict[str, Path], packages: tuple[str, ...]) -> list[Import]:
    """Imports of Qt, or of app.ui, by modules of ``packages`` (anywhere in the file)."""
    bad = []
    for module, path in modules.items():
        if not any(module == p or module.startswith(p + ".") for p in packages):
            continue
        for imp in imports_of(module, path):
            top = imp.target.split(".")[0]
            if top in QT_MODULES or imp.target == "app.ui" or imp.target.startswith("app.ui."):
                bad.append(imp)
    return bad


def _package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layer_violations(modules: dict[str, Path], layers: dict[str, frozenset[str]]) -> list[Import]:
    """Imports (function-level and TYPE_CHECKING included) from a layered package into an app
    package it may not see."""
    bad = []
    for module, path in modules.items():
        src = _package_of(module)
        if src not in layers:
            continue
        for imp in imports_of(module, path):
            target = resolve(imp.target, modules)
            if target is None or "." not in target:  # the root package holds only the version
                continue
            dst = _package_of(target)
            if dst != src and dst not in layers[src]:
                bad.append(imp)
    return bad


def oversized(modules: dict[str, Path], limit: int = MAX_LINES) -> list[tuple[str, int]]:
    sizes = ((m, len(p.read_text(encoding="utf-8").splitlines())) for m, p in modules.items())
    return sorted((m, n) for m, n in sizes if n > limit)


def imports_of_tests(files: list[Path], test_modules: frozenset[str] = frozenset()) -> list[Import]:
    """Imports of the ``tests`` package, or of a module that lives in tests/ by its bare name
    (``from loopback_server import ...`` after putting a tests folder on sys.path)."""
    bad = []
    for path in files:
        for imp in imports_of(path.stem, path):
            top = imp.target.split(".")[0]
            if top == "tests" or top in test_modules:
                bad.append(imp)
    return bad


def modules_in_tests(tests_dir: Path) -> frozenset[str]:
    return frozenset(p.stem for p in tests_dir.rglob("*.py") if p.stem != "__init__")


# --- the rules, on the real tree ---------------------------------------------------------


@pytest.fixture(scope="module")
def app_modules() -> dict[str, Path]:
    modules = module_map(REPO)
    assert len(modules) > 50, f"too few modules found under {REPO / 'app'}"
    return modules


def test_core_packages_never_import_qt(app_modules):
    bad = qt_imports(app_modules, QT_FREE_PACKAGES)
    assert not bad, "Qt (or app.ui) imported outside app/ui and app/cli:\n" + "\n".join(
        f"  {i.source}: {i.path.relative_to(REPO)}:{i.lineno}: {i.text}" for i in bad
    )


def test_imports_go_one_direction_between_packages(app_modules):
    bad = layer_violations(app_modules, LAYERS)
    assert not bad, "imports against the layer order study <- pipeline <- audit <- ui/cli:\n" + "\n".join(
        f"  {i.source}: {i.path.relative_to(REPO)}:{i.lineno}: {i.text}" for i in bad
    )


def test_no_import_cycles_between_app_modules(app_modules):
    cycles = find_cycles(import_graph(app_modules))
    assert not cycles, f"{len(cycles)} import cycle(s) in app/ (function-level imports count):\n" + "\n".join(
        describe_cycle(c).replace(str(REPO) + "/", "") for c in cycles
    )


def test_no_module_over_500_lines(app_modules):
    big = oversized(app_modules)
    assert not big, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(
        f"  {app_modules[m].relative_to(REPO)}: {n} lines" for m, n in big
    )


def test_app_and_benchmarks_never_import_tests(app_modules):
    files = sorted((REPO / "benchmarks").glob("*.py")) + list(app_modules.values())
    bad = imports_of_tests(files, modules_in_tests(REPO / "tests"))
    assert not bad, "the tests package is imported from outside tests/:\n" + "\n".join(
        f"  {i.path.relative_to(REPO)}:{i.lineno}: {i.text}" for i in bad
    )


# --- the checker's own tests, on synthetic packages ----------------------------------------


def _write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return module_map(root, "pkg")


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    modules = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .b import thing\n",
        "pkg/sub/__init__.py": "",
        "pkg/b.py": "def thing():\n    from pkg.sub import c  # late\n    return c\n",
        "pkg/sub/c.py": "import os\n\ndef f():\n    from ..a import x\n",
    })  # fmt: skip
    cycles = find_cycles(import_graph(modules))
    assert len(cycles) == 1
    text = describe_cycle(cycles[0])
    assert [i.source for i in cycles[0]] == ["pkg.a", "pkg.b", "pkg.sub.c"]
    assert "pkg.a -> pkg.b -> pkg.sub.c -> pkg.a" in text
    assert "b.py:2: from pkg.sub import c  # late" in text  # names the offending line


def test_checker_ignores_type_checking_imports(tmp_path):
    modules = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from typing import TYPE_CHECKING\nfrom pkg import b\n",
        "pkg/b.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.a import A\nelse:\n    pass\n",
    })  # fmt: skip
    assert find_cycles(import_graph(modules)) == []
    # ... but the same import outside the guard is a cycle.
    (tmp_path / "pkg/b.py").write_text("def f():\n    import pkg.a\n")
    assert len(find_cycles(import_graph(modules))) == 1


def test_checker_counts_package_init_and_relative_imports(tmp_path):
    modules = _write_package(tmp_path, {
        "pkg/__init__.py": "from .core import run\n",
        "pkg/core.py": "from . import helpers\n",
        "pkg/helpers.py": "import pkg\n",  # importing the package runs its __init__
    })  # fmt: skip
    (cycle,) = find_cycles(import_graph(modules))
    assert {i.source for i in cycle} == {"pkg", "pkg.core", "pkg.helpers"}


def test_checker_finds_qt_inside_a_function(tmp_path):
    modules = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/core/__init__.py": "",
        "pkg/core/model.py": "import numpy\n\ndef show():\n    from PySide6.QtWidgets import QLabel\n",
        "pkg/core/icons.py": "import importlib\nqta = importlib.import_module('qtawesome')\n",
        "pkg/core/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import shiboken6\n",
        "pkg/core/ok.py": "import numpy\n",
        "pkg/ui/__init__.py": "from PySide6 import QtCore\n",
    })  # fmt: skip
    bad = qt_imports(modules, ("pkg.core",))
    assert sorted((i.source, i.lineno) for i in bad) == [
        ("pkg.core.icons", 2), ("pkg.core.model", 4), ("pkg.core.typed", 3)
    ]  # fmt: skip


def test_checker_finds_long_modules_and_imports_of_tests(tmp_path):
    modules = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/long.py": "x = 1\n" * 501,
        "pkg/short.py": "x = 1\n" * 500,
    })  # fmt: skip
    assert oversized(modules) == [("pkg.long", 501)]
    bench = tmp_path / "bench.py"
    bench.write_text("import sys\n\ndef main():\n    from tests.tiny_models import ensure_tiny_models\n"
                     "    from loopback_server import Server\n")
    found = imports_of_tests([bench], frozenset({"loopback_server"}))
    assert [(i.lineno, i.target) for i in found] == [(4, "tests.tiny_models.ensure_tiny_models"),
                                                     (5, "loopback_server.Server")]


def test_checker_finds_an_import_against_the_layers(tmp_path):
    mods = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/study/__init__.py": "",
        "pkg/study/loader.py": "def f():\n    from pkg.pipeline import engine\n",
        "pkg/pipeline/__init__.py": "",
        "pkg/pipeline/engine.py": "from pkg.study import loader\n",
    })
    layers = {"pkg.study": frozenset(), "pkg.pipeline": frozenset({"pkg.study"})}
    bad = layer_violations(mods, layers)
    assert [(i.source, i.target) for i in bad] == [("pkg.study.loader", "pkg.pipeline.engine")]
