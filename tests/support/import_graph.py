"""The project's import graph read from the source (ast), imports inside functions included,
``if TYPE_CHECKING:`` blocks left out (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sarlang_core", "app")

# What app/ may import from the core besides sarlang_core.services: the shared types.
APP_MAY_IMPORT = (
    "sarlang_core.errors",                # typed errors
    "sarlang_core.progress",              # Progress, CancelToken
    "sarlang_core.preprocess.pipeline",   # Pipeline and its specs
    "sarlang_core.evaluate.run_config",   # RunConfig and its specs
    "sarlang_core.resources",             # the sample scene and the style sheet
)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def project_imports(root: Path) -> Dict[str, Set[str]]:
    """Module -> the modules it imports (project modules resolved to the most specific module;
    others by their full dotted name)."""
    files = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            files[_module_name(root, path)] = path
    modules = set(files)
    graph: Dict[str, Set[str]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        here = mod if is_pkg else mod.rpartition(".")[0]
        targets: Set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = here.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
        targets.discard(mod)
        graph[mod] = targets
    return graph


def import_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one project module (Tarjan), each sorted."""
    nodes = sorted(graph)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    out: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(t for t in graph[v] if t in graph):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(out)


def app_core_violations(graph: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    bad = []
    for mod, targets in sorted(graph.items()):
        if not mod.startswith("app"):
            continue
        for t in sorted(targets):
            if not t.startswith("sarlang_core"):
                continue
            if t == "sarlang_core.services" or t.startswith("sarlang_core.services."):
                continue
            if t in APP_MAY_IMPORT:
                continue
            bad.append((mod, t))
    return bad
