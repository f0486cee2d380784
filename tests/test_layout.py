"""The tree shows the architecture, and the imports follow it (README, Development, Layout).

Read from the source with `ast`, so nothing is imported: every `import` counts, at the top of a
module or inside a function, except those under `if TYPE_CHECKING:` for the cycle check (they never
run; bot.runtime.slack_files names bot.runtime.slack_outbox's class that way, for its annotations).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage")


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if "migrations" in parts:  # Alembic's scripts, loaded by Alembic from files
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported project module, line, under TYPE_CHECKING) for every import statement in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for c in child.body:
                    visit_one(c, True)
                for c in child.orelse:
                    visit_one(c, typing_only)
            else:
                visit_one(child, typing_only)

    def visit_one(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            # `from bot.cli import commands` imports the module bot.cli.commands; `from bot.cli.main
            # import main` imports bot.cli.main.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            visit(node, typing_only)
            return
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                out.append((target, node.lineno, typing_only))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return list(dict.fromkeys(out))  # `from a import b, c` is one import of a


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _layer(name: str) -> str:
    for package in ("bot.cli", "bot.runtime", "handlers", "storage"):
        if _in(name, package):
            return package
    return "domain"


def test_the_packages_are_found() -> None:
    for name in ("bot.cli.main", "bot.cli.errors", "bot.runtime.service", "bot.intake", "bot.outbox_kinds",
                 "handlers.smtp", "storage.repo"):
        assert name in MODULES


def test_no_import_cycles() -> None:
    graph = {name: {t for t, _, typing_only in IMPORTS[name] if not typing_only} for name in MODULES}
    cycles = _cycles(graph)
    detail = [f"{a}:{line} imports {t}" for group in cycles for a in group
              for t, line, typing_only in IMPORTS[a] if t in group and not typing_only]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_imports_go_one_way() -> None:
    """The domain (bot/ outside bot.cli and bot.runtime) uses neither the command line, nor the
    running service, nor the doors; the service and the doors do not use the command line; storage
    uses nothing of the rest. `python -m bot` (bot.__main__) is the command line's entry point."""
    forbidden = {
        "domain": ("bot.cli", "bot.runtime", "handlers"),
        "bot.runtime": ("bot.cli",),
        "handlers": ("bot.cli",),
        "storage": ("bot", "handlers"),
    }
    wrong = [f"{name}:{line} imports {target}"
             for name, imports in IMPORTS.items() if name != "bot.__main__"
             for target, line, _ in imports
             if any(_in(target, p) for p in forbidden.get(_layer(name), ()))]
    assert not wrong, "\n".join(wrong)


def test_package_inits_import_nothing() -> None:
    """Importing bot.cli.errors (every command raises UserError) must not load the whole command
    line, nor a module of bot.runtime the whole service."""
    for name in ("bot.cli", "bot.runtime"):
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), name
        assert len(tree.body) == 1, f"{name}/__init__.py should hold its docstring only"


def test_every_module_says_what_it_is() -> None:
    missing = [name for name, path in MODULES.items() if not ast.get_docstring(ast.parse(path.read_text("utf-8")))]
    assert not missing, missing
