"""The layer rules of DESIGN §5, checked by reading every module's AST.

Each rule is a function of a package tree (its root directory), so that it is run on ``mmbot``
and also on small packages written here that break it on purpose: a rule that cannot fail
proves nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mmbot"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
MAX_LINES = 400
# Over MAX_LINES when the rule came in, while others split them by concept (issue 10, build item 6).
IO_LIBRARIES = {"trio", "trio_websocket", "httpx", "sqlite3", "sqlite_utils", "socket", "asyncio"}
AMBIENT_TIME = {
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
    ("time", "perf_counter"), ("time", "perf_counter_ns"), ("datetime", "now"), ("datetime", "utcnow"),
    ("trio", "current_time"),
}
AMBIENT_RANDOM = {"random", "randint", "choice", "uniform", "shuffle", "randrange", "sample", "gauss"}
# What the operator's cockpit may import: the shared values and its own modules. It is given
# snapshots and rows; only the composition root (app_cockpit, app_metrics, app_alerts) reads the engine.
COCKPIT_MAY = ("mmbot.cockpit", "mmbot.model", "mmbot.ports", "mmbot.config", "mmbot.backoff")
ROOTS = ("mmbot.app", "mmbot.app_live", "mmbot.cli", "mmbot.cli_live", "mmbot.cli_run")  # composition roots and the CLI


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, path: Path, package: Path) -> str | None:
    """The module a ``from ... import`` names, relative ones resolved against the importer."""
    if node.level == 0:
        return node.module
    base = module_name(path, package).split(".")
    if path.name != "__init__.py":
        base.pop()  # a module's relative imports start at its package
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, package: Path = PACKAGE) -> set[str]:
    """Every name an import statement anywhere in the module (function bodies included) could
    mean: ``from a.b import c`` gives both ``a.b`` and ``a.b.c``."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path, package)
            if module:
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def ours(imports: set[str]) -> set[str]:
    return {name for name in imports if name == "mmbot" or name.startswith("mmbot.")}


def top(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def _within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def layer_violations(name: str, imported: set[str]) -> list[str]:
    """What module ``name``, importing ``imported``, does against the import rules."""
    mine = ours(imported)
    found = []
    if name == "mmbot.ports" or _within(name, "mmbot.model"):
        bad = {m for m in mine if not _within(m, "mmbot.model")}
        if bad:
            found.append(f"{name} imports {sorted(bad)}: the model and ports import nothing of ours but the model")
    if _within(name, "mmbot.decisions"):
        bad = {m for m in mine if not _within(m, "mmbot.model", "mmbot.ports", "mmbot.config", "mmbot.decisions")}
        if bad:
            found.append(f"{name} imports {sorted(bad)}: decisions import only model, ports, config and decisions")
        io = top(imported) & IO_LIBRARIES
        if name != "mmbot.decisions.tasks" and io:
            found.append(f"{name} is sans-IO but imports {sorted(io)}")
        if name == "mmbot.decisions.tasks" and io - {"trio"}:
            found.append(f"tasks.py may import trio only, not {sorted(io - {'trio'})}")
    if _within(name, "mmbot.facts", "mmbot.memory"):
        bad = {m for m in mine if _within(m, "mmbot.decisions", "mmbot.venues")}
        if bad:
            found.append(f"{name} imports {sorted(bad)}: facts and memory never import decisions or venues")
    if _within(name, "mmbot.venues"):
        bad = {m for m in mine if _within(m, "mmbot.decisions", "mmbot.memory")}
        if bad:
            found.append(f"{name} imports {sorted(bad)}: venues never import decisions or memory")
    if _within(name, "mmbot.cockpit"):
        bad = {m for m in mine if not _within(m, *COCKPIT_MAY)}
        if bad:
            found.append(f"{name} imports {sorted(bad)}: the cockpit reads values the composition root builds,"
                         " never the engine's layers")
    if name not in ROOTS and set(ROOTS) & mine:
        found.append(f"{name} imports the composition root {sorted(set(ROOTS) & mine)}")
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Our module -> the modules of ours it imports, from every import statement in it.

    ``from a.b import c`` is an edge to the module ``a.b.c`` when there is one, else to ``a.b``.
    Only what a statement names counts: importing ``a.b.c`` also runs ``a/b/__init__.py``, but
    that is Python's doing, so a package re-exporting its submodules is no circle with them."""
    modules = {module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                module = _absolute(node, path, package)
                for alias in node.names:
                    target = f"{module}.{alias.name}"
                    if target in modules:
                        edges.add(target)
                    elif module in modules:
                        edges.add(module)
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def lines_of(path: Path) -> int:
    return len(path.read_text().splitlines())


# --------------------------------------------------------------------------- the rules on mmbot


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_import_rules(path: Path) -> None:
    assert layer_violations(module_name(path), imports_of(path)) == []


def test_no_import_circles() -> None:
    assert circles(import_graph(PACKAGE)) == []


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_over_400_lines(path: Path) -> None:
    assert lines_of(path) <= MAX_LINES, f"{module_name(path)} has {lines_of(path)} lines: split it by concept"


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
    assert any(n.startswith("mmbot.venues.polymarket.") for n in names) and "mmbot.facts" in names


# --------------------------------------------------------------------------- the rules can fail


def _write(root: Path, files: dict[str, str]) -> Path:
    """A package ``mmbot`` under ``root`` with these modules (path -> source)."""
    for rel, source in files.items():
        path = root / "mmbot" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    for directory in [root / "mmbot", *(p for p in (root / "mmbot").rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    return root / "mmbot"


def _violations(package: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        broken = layer_violations(name, imports_of(path, package))
        if broken:
            found[name] = broken
    return found


def test_the_layer_rules_catch_a_synthetic_violation_of_each(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "decisions/book.py": "X = 1\n",
        "memory/log.py": "Y = 1\n",
        "config.py": "",
        "model/values.py": "from mmbot.config import Z\n",  # the model imports nothing but the model
        "ports.py": "from mmbot.model.values import V\n",  # fine
        "facts/feed.py": "def f():\n    import mmbot.venues.paper\n",
        "venues/paper.py": "def fill():\n    from mmbot.decisions.book import X\n",  # function-level
        "venues/polymarket/ws.py": "from ...memory import log\n",  # relative: mmbot.memory
        "venues/polymarket/wire.py": "from . import ws\nfrom mmbot.model import values\n",  # fine
        "decisions/risk.py": "import httpx\nfrom mmbot.facts.feed import f\n",
        "decisions/tasks.py": "import trio\n",  # fine
        "cockpit/view.py": "from mmbot.cockpit.snapshot import S\nfrom mmbot.model import M\n",  # fine
        "cockpit/peek.py": "def f():\n    from mmbot.decisions.book import X\n",
    })
    found = _violations(package)
    assert sorted(found) == ["mmbot.cockpit.peek", "mmbot.decisions.risk", "mmbot.facts.feed", "mmbot.model.values",
                             "mmbot.venues.paper", "mmbot.venues.polymarket.ws"], found
    assert "the cockpit reads values" in found["mmbot.cockpit.peek"][0]
    assert "venues never import decisions or memory" in found["mmbot.venues.paper"][0]
    assert "['mmbot.memory', 'mmbot.memory.log']" in found["mmbot.venues.polymarket.ws"][0]
    assert "facts and memory never import" in found["mmbot.facts.feed"][0]
    assert "nothing of ours but the model" in found["mmbot.model.values"][0]
    assert len(found["mmbot.decisions.risk"]) == 2  # a layer it may not import, and I/O


def test_the_circle_rule_finds_circles_through_any_import_statement(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "model/__init__.py": "from mmbot.model.values import V\nfrom mmbot.model.user import U\n",  # re-exports
        "model/values.py": "V = 1\n",
        "model/user.py": "from mmbot.model.values import V\nU = 2\n",
        "cli.py": "from mmbot import cli_live\n",  # `from package import module`: the module
        "cli_live.py": "def main():\n    from mmbot.cli import UsageError\n",  # function-level, back
        "a.py": "import mmbot.b\n",
        "b.py": "from mmbot.c import thing\n",
        "c.py": "from .a import x\n",  # relative, closing a → b → c → a
        "d.py": "from mmbot.model import V\nfrom mmbot.a import x\n",  # into a circle, not part of one
    })
    graph = import_graph(package)
    assert graph["mmbot.cli"] == {"mmbot.cli_live"} and graph["mmbot.d"] == {"mmbot.model", "mmbot.a"}
    assert circles(graph) == [["mmbot.a", "mmbot.b", "mmbot.c"], ["mmbot.cli", "mmbot.cli_live"]]
    (package / "model" / "values.py").write_text("from mmbot.model import U\nV = 1\n")  # a submodule importing its package
    assert ["mmbot.model", "mmbot.model.user", "mmbot.model.values"] in circles(import_graph(package))


def test_the_size_rule_counts_lines(tmp_path: Path) -> None:
    package = _write(tmp_path, {"short.py": "x = 1\n" * MAX_LINES, "long.py": "x = 1\n" * (MAX_LINES + 1)})
    assert lines_of(package / "short.py") <= MAX_LINES < lines_of(package / "long.py")
