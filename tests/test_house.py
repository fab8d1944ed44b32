"""The house: the library's modules import each other without a cycle (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import cognito_migration

PACKAGE = Path(cognito_migration.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every cognito_migration module ``path`` imports, wherever the import statement stands."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            target = (
                [*base, *(node.module.split(".") if node.module else [])]
                if node.level
                else (node.module or "").split(".")
            )
            if target[:1] != ["cognito_migration"]:
                continue
            for alias in node.names:
                candidate = ".".join([*target, alias.name])
                found.add(
                    candidate
                    if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists()
                    else ".".join(target)
                )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cognito_migration"))
    return {m for m in found if m != module_name(path)}


def test_no_import_cycle() -> None:
    graph = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    packages = {m for m in graph if (PACKAGE.parent / Path(*m.split(".")) / "__init__.py").exists()}
    graph = {m: {d for d in deps if d not in packages} for m, deps in graph.items() if m not in packages}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for dependency in sorted(graph.get(module, ())):
            if dependency in path:
                cycles.append([*path[path.index(dependency) :], dependency])
            elif len(path) < 30:
                visit(dependency, [*path, dependency])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles[:10])
