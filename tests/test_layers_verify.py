"""verify's import graph has no cycles, and every import inside a function says why it is there.

The graph is read from the source (:mod:`ast`), with the imports inside functions counted too
(import-linter's contracts in pyproject.toml state the order; this finds any cycle, even one
between modules of a layer). An import inside a function is kept only to avoid a heavy or
optional dependency, with a ``# lazy:`` comment on the line directly above it. Both scans, and the
contracts, are checked on planted violations too.
"""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]


def _modules(root, package):
    """Module name -> path, for every ``.py`` file of ``package`` under ``root``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node):
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree):
    """(import node, inside a function) for every import, ``if TYPE_CHECKING:`` blocks left out."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def _imported_names(module, is_package, node):
    """The dotted names an import statement in ``module`` names (relative ones resolved); the
    caller trims each to the longest prefix that is a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" for alias in node.names]  # a module, or a name in base


def import_graph(root, package):
    """Module -> the modules of ``package`` it imports (at module level or in a function)."""
    modules = _modules(root, package)
    graph = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node, _ in _imports(ast.parse(path.read_text(), str(path))):
            for name in _imported_names(module, is_package, node):
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return found


def unexplained_lazy_imports(root, package):
    """``path:line`` of each import inside a function without ``# lazy:`` directly above it."""
    missing = []
    for path in _modules(root, package).values():
        lines = path.read_text().splitlines()
        for node, in_function in _imports(ast.parse("\n".join(lines), str(path))):
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            if in_function and not above.startswith("# lazy:"):
                missing.append(f"{path.relative_to(root)}:{node.lineno}")
    return missing


def _plant(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / "planted" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_planted_cycle_through_a_function_level_import_is_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": "def f():\n    # lazy: planted\n    from .sub import c\n",
            "sub/__init__.py": "",
            "sub/c.py": "import planted.a\n",
            "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
        },
    )
    assert cycles(import_graph(root, "planted")) == [["planted.a", "planted.b", "planted.sub.c"]]
    assert "planted.a" not in import_graph(root, "planted")["planted.d"]


def test_verify_has_no_import_cycles():
    graph = import_graph(_ROOT, "verify")
    assert graph["verify.cli"] >= {"verify.audit", "verify.registry"}  # the scan sees imports
    assert cycles(graph) == []


def test_a_planted_unexplained_lazy_import_is_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "__init__.py": "import os\n",
            "a.py": (
                "def f():\n    # lazy: planted\n    import json\n\n"
                "def g():\n    # an ordinary comment\n    import csv\n\n"
                "class C:\n    def h(self):\n        import re\n"
            ),
        },
    )
    assert unexplained_lazy_imports(root, "planted") == ["planted/a.py:7", "planted/a.py:11"]


@pytest.mark.parametrize("package", ["verify"])
def test_every_function_level_import_in_verify_says_why(package):
    assert unexplained_lazy_imports(_ROOT, package) == []


def _verify_contracts():
    """The import-linter contracts in pyproject.toml about verify."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(_ROOT / "pyproject.toml", "rb") as file:
        contracts = tomllib.load(file)["tool"]["importlinter"]["contracts"]
    return [c for c in contracts if c["name"].startswith("verify's")]


def _lint_imports(root, contracts):
    """Run lint-imports on ``root`` with only ``contracts``; (exit code, output)."""
    lines = [
        "[tool.importlinter]",
        'root_packages = ["verify", "derive"]',
        "include_external_packages = true",
    ]
    for contract in contracts:  # strings, booleans and lists of strings: JSON reads as TOML
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in contract.items()]
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    executable = Path(sys.executable).with_name("lint-imports")
    completed = subprocess.run(
        [str(executable), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    return completed.returncode, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def verify_copy(tmp_path_factory):
    """A copy of derive and verify to plant violations in."""
    root = tmp_path_factory.mktemp("tree")
    for package in ("derive", "verify"):
        shutil.copytree(
            _ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


def test_verify_keeps_its_import_contracts(verify_copy):
    contracts = _verify_contracts()
    assert {c["type"] for c in contracts} == {"layers", "independence", "forbidden"}
    code, output = _lint_imports(verify_copy, contracts)
    assert code == 0, output
    assert output.count(" KEPT") == len(contracts), output


@pytest.mark.parametrize(
    "module, planted, broken",
    [
        ("verify/losses.py", "from verify import registry", "layers"),
        ("verify/monitor/head.py", "from verify.audit import loading", "independence"),
        ("verify/checks/_common.py", "import matplotlib", "forbidden"),
    ],
)
def test_a_planted_function_level_import_breaks_a_contract(verify_copy, module, planted, broken):
    path = verify_copy / module
    original = path.read_text()
    path.write_text(original + f"\n\ndef _planted():\n    {planted}\n")
    try:
        contracts = [c for c in _verify_contracts() if c["type"] == broken]
        code, output = _lint_imports(verify_copy, contracts)
    finally:
        path.write_text(original)
    assert code == 1 and " BROKEN" in output, output
