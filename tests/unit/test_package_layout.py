"""The package's shape: no import cycle, no module over 800 lines, and the optional wings'
packages (docker, kazoo) needed only where they are used, with a clear error when missing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mesosspawner"
MAX_LINES = 800


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, lazy (function-level) imports included and
    ``if TYPE_CHECKING:`` ones left out (they never run)."""
    mods = modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                # `from . import x` imports the module x when there is one.
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "mesosspawner.framework" in graph["mesosspawner.spawner"]  # the graph is read
    assert cycles(graph) == []


def test_no_module_is_over_800_lines():
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


_BLOCK = """
import sys
for name in ("docker", "kazoo"):
    sys.modules[name] = None  # import raises ImportError, as when the extra is not installed
"""


def _without_extras(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_spawner_and_localmesos_need_neither_docker_nor_kazoo():
    run = _without_extras(
        "import mesosspawner.spawner, mesosspawner.demo, mesosspawner.localmesos.cluster\n"
        "import mesosspawner.images.cli, mesosspawner.images.service.hubconfig\n"
        "from mesosspawner import MesosSpawner\n"
        "print('ok')"
    )
    assert run.stdout.strip() == "ok", run.stderr


@pytest.mark.parametrize(
    "code, extra",
    [
        (
            "from mesosspawner.mesos.detector import make_detector\n"
            "make_detector('zk://127.0.0.1:2181/mesos')",
            "mesosspawner[zookeeper]",
        ),
        ("from mesosspawner.images.lab import connect\nconnect()", "mesosspawner[images]"),
        (
            "from mesosspawner.images.cli import main\nsys.exit(main(['--docker-dir', 'docker']))",
            "",
        ),
    ],
)
def test_a_missing_extra_is_named(code, extra):
    run = _without_extras(code)
    assert run.returncode != 0
    assert extra in run.stderr, run.stderr
