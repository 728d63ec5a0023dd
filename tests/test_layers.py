"""The import rules of DESIGN §5, checked by reading every module's AST."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mmbot"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))

IO_LIBRARIES = {"trio", "trio_websocket", "httpx", "sqlite3", "sqlite_utils", "socket", "asyncio"}
AMBIENT_TIME = {
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
    ("time", "perf_counter"), ("time", "perf_counter_ns"), ("datetime", "now"), ("datetime", "utcnow"),
    ("trio", "current_time"),
}
AMBIENT_RANDOM = {"random", "randint", "choice", "uniform", "shuffle", "randrange", "sample", "gauss"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def ours(imports: set[str]) -> set[str]:
    return {name for name in imports if name == "mmbot" or name.startswith("mmbot.")}


def top(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_import_rules(path: Path) -> None:
    name = module_name(path)
    imported = imports_of(path)
    mine = ours(imported)
    if name == "mmbot.ports" or name.startswith("mmbot.model"):
        allowed = {"mmbot.model"}
        assert {m for m in mine if not any(m == a or m.startswith(a + ".") for a in allowed)} == set(), (
            f"{name} must import nothing of ours but the model"
        )
    if name.startswith("mmbot.decisions"):
        allowed = ("mmbot.model", "mmbot.ports", "mmbot.config", "mmbot.decisions")
        bad = {m for m in mine if not m.startswith(allowed)}
        assert not bad, f"{name} imports {bad}: decisions import only model, ports, config and decisions"
        io = top(imported) & IO_LIBRARIES
        if name != "mmbot.decisions.tasks":
            assert not io, f"{name} is sans-IO but imports {io}"
        else:
            assert io <= {"trio"}, f"tasks.py may import trio only, not {io - {'trio'}}"
    if name.startswith(("mmbot.facts", "mmbot.memory")):
        bad = {m for m in mine if m.startswith(("mmbot.decisions", "mmbot.venues"))}
        assert not bad, f"{name} must not import {bad}"
    root = ("mmbot.app", "mmbot.app_live", "mmbot.cli", "mmbot.cli_live")  # composition roots and the CLI
    if name not in root:
        assert not set(root) & mine, f"{name} imports the composition root"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_ambient_time_or_randomness(path: Path) -> None:
    if module_name(path) == "mmbot.clock":
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            pair = (owner_name, node.func.attr)
            assert pair not in AMBIENT_TIME, f"{module_name(path)}:{node.lineno} reads real time ({pair})"
            if owner_name == "random":
                assert node.func.attr not in AMBIENT_RANDOM, (
                    f"{module_name(path)}:{node.lineno} uses the global random generator"
                )


def test_every_layer_is_checked() -> None:
    names = {module_name(p) for p in MODULES}
    assert {"mmbot.model", "mmbot.ports", "mmbot.clock", "mmbot.decisions.executor"} <= names
