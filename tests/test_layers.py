"""The layers of the packages hold: no import cycles, and imports at module level.

* ``lint-imports`` (import-linter, configured in pyproject.toml's ``[tool.importlinter]``)
  checks the layers contracts and the forbidden imports; it reads every import statement,
  function-level ones included, which a planted function-level import shows.
* Every import inside a function carries, on the line directly above it, a comment
  ``# lazy: <reason>`` (a heavy or optional dependency kept out of an import).
* No cycle among derive's modules, nor among verify's, counting function-level imports
  (``if TYPE_CHECKING:`` blocks aside): Tarjan's strongly connected components over the
  module graph.

Each check has a negative control: a tiny package in ``tmp_path`` with a planted violation.
"""

import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from functools import lru_cache

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command; "
    "sys.exit(lint_imports_command())"
)


def _lint_imports(*arguments, cwd, path):
    """``lint-imports`` (the console script's entry point) run by this interpreter, with
    ``path`` first on the module search path so that the packages analysed are these."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, "--no-cache", "--no-logo", *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _write_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


# -- the module graph, from the source -------------------------------------------------------


def _modules(package_dir):
    """``{dotted name: (path, is_package)}`` of every module under ``package_dir``."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


@lru_cache(maxsize=None)
def _parsed(path, mtime):
    """``(lines, tree)`` of a source file (each file is parsed once per version)."""
    text = path.read_text()
    return text.splitlines(), ast.parse(text, filename=str(path))


def _source(path):
    return _parsed(path, path.stat().st_mtime_ns)


def _imports(tree):
    """``(node, in a function)`` for every import statement, outside ``if TYPE_CHECKING:``
    (imports are statements: only the statement lists of the tree are walked)."""
    found = []

    def visit(statements, in_function):
        for statement in statements:
            if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
                visit(statement.orelse, in_function)
                continue
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                found.append((statement, in_function))
            inner = in_function or isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
            for block in ("body", "orelse", "finalbody"):
                visit(getattr(statement, block, []), inner)
            for clause in getattr(statement, "handlers", []) + getattr(statement, "cases", []):
                visit(clause.body, inner)

    visit(tree.body, False)
    return found


def _targets(node, module, is_package, modules):
    """The modules of ``modules`` that an import statement in ``module`` names (as grimp
    does: ``from package import submodule`` is the submodule, not the package)."""
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
    else:
        base = module.split(".")
        if node.level:
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module
        candidates = [
            f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
            for alias in node.names
        ]
    targets = set()
    for name in candidates:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)
    return targets


def module_graph(package_dir):
    """``{module: {imported module}}`` within the package, function-level imports counted."""
    modules = _modules(package_dir)
    graph = {}
    for module, (path, is_package) in modules.items():
        _, tree = _source(path)
        graph[module] = set()
        for node, _ in _imports(tree):
            graph[module] |= _targets(node, module, is_package, modules)
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = iter(range(len(graph) + 1))

    def connect(node):
        index[node] = low[node] = next(counter)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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
            connect(node)
    return sorted(found)


def unexplained_lazy_imports(package_dir):
    """``path:line: import`` of every function-level import without ``# lazy: <reason>`` on the
    line directly above it."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        lines, tree = _source(path)
        for node, in_function in _imports(tree):
            if not in_function:
                continue
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            reason = above.removeprefix("# lazy:").strip()
            if not above.startswith("# lazy:") or not reason:
                found.append(
                    f"{path.relative_to(package_dir.parent)}:{node.lineno}: {ast.unparse(node)}"
                )
    return found


# -- import-linter -----------------------------------------------------------------------------


def test_lint_imports_keeps_every_contract():
    run = _lint_imports(cwd=ROOT, path=ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "derive: each layer imports only the layers below it KEPT" in run.stdout
    assert " 0 broken" in run.stdout


_TOY = {
    "toy/__init__.py": "",
    "toy/high.py": "from toy import low\n",
    "toy/low.py": "def helper():\n    return 1\n",
}
_TOY_CONTRACT = """
[tool.importlinter]
root_packages = ["toy"]

[[tool.importlinter.contracts]]
name = "toy: high over low"
type = "layers"
containers = ["toy"]
layers = ["high", "low"]
"""


def test_lint_imports_breaks_a_contract_on_a_planted_function_level_import(tmp_path):
    (tmp_path / "contract.toml").write_text(_TOY_CONTRACT)
    _write_package(tmp_path, _TOY)
    kept = _lint_imports("--config", "contract.toml", cwd=tmp_path, path=tmp_path)
    assert kept.returncode == 0, kept.stdout[-2000:] + kept.stderr[-2000:]
    planted = "def helper():\n    from toy import high\n\n    return high\n"
    (tmp_path / "toy" / "low.py").write_text(planted)
    broken = _lint_imports("--config", "contract.toml", cwd=tmp_path, path=tmp_path)
    assert broken.returncode == 1, broken.stdout[-2000:] + broken.stderr[-2000:]
    assert "toy.low is not allowed to import toy.high" in broken.stdout


def _contracts(prefix):
    """The import-linter contracts of pyproject.toml whose name starts with ``prefix``."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as file:
        contracts = tomllib.load(file)["tool"]["importlinter"]["contracts"]
    return [c for c in contracts if c["name"].startswith(prefix)]


def _lint_only(root, contracts):
    """``lint-imports`` on the packages under ``root`` with only ``contracts``."""
    lines = [
        "[tool.importlinter]",
        'root_packages = ["verify", "derive"]',
        "include_external_packages = true",
    ]
    for contract in contracts:  # strings, booleans and lists of strings: JSON reads as TOML
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in contract.items()]
    (root / "contracts.toml").write_text("\n".join(lines) + "\n")
    return _lint_imports("--config", "contracts.toml", cwd=root, path=root)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory):
    """A copy of derive and verify to plant violations in."""
    root = tmp_path_factory.mktemp("tree")
    for package in ("derive", "verify"):
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


@pytest.mark.parametrize(
    "module, planted, broken",
    [
        ("verify/losses.py", "from verify import registry", "layers"),
        ("verify/monitor/head.py", "from verify.audit import loading", "independence"),
        ("verify/checks/_common.py", "import matplotlib", "forbidden"),
    ],
)
def test_a_planted_function_level_import_breaks_each_kind_of_verify_contract(
    tree_copy, module, planted, broken
):
    contracts = [c for c in _contracts("verify's") if c["type"] == broken]
    assert contracts
    kept = _lint_only(tree_copy, contracts)
    assert kept.returncode == 0 and " BROKEN" not in kept.stdout, kept.stdout + kept.stderr
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + f"\n\ndef _planted():\n    {planted}\n")
    try:
        run = _lint_only(tree_copy, contracts)
    finally:
        path.write_text(original)
    assert run.returncode == 1 and " BROKEN" in run.stdout, run.stdout + run.stderr


# -- function-level imports say why ------------------------------------------------------------


@pytest.mark.parametrize("package", ["derive", "verify"])
def test_every_function_level_import_says_why(package):
    found = unexplained_lazy_imports(ROOT / package)
    assert not found, "function-level imports without '# lazy: <reason>' above:\n" + "\n".join(
        found
    )


def test_an_unexplained_function_level_import_is_found(tmp_path):
    _write_package(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/module.py": """
                import json


                def explained():
                    # lazy: a planted reason
                    import csv

                    return csv


                def unexplained():
                    import os  # a comment beside it is not a reason

                    return os, json


                def empty_reason():
                    # lazy:
                    import sys

                    return sys
                """,
        },
    )
    found = unexplained_lazy_imports(tmp_path / "toy")
    assert [entry.split(": ", 1)[1] for entry in found] == ["import os", "import sys"]


# -- no cycles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "package, known", [("derive", "derive.notation"), ("verify", "verify.cli")]
)
def test_no_import_cycle(package, known):
    graph = module_graph(ROOT / package)
    assert known in graph and len(graph) > 30
    assert cycles(graph) == []


def test_notation_imports_nothing_of_derive_but_its_errors():
    assert module_graph(ROOT / "derive")["derive.notation"] == {"derive._errors"}


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    _write_package(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/a.py": "from toy import b\n",
            "toy/b.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from toy import c


                def late():
                    from . import a

                    return a
                """,
            "toy/c.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from toy import b
                """,
        },
    )
    graph = module_graph(tmp_path / "toy")
    assert graph["toy.b"] == {"toy.a"} and graph["toy.c"] == set()
    assert cycles(graph) == [["toy.a", "toy.b"]]
    (tmp_path / "toy" / "b.py").write_text("def late():\n    return None\n")
    assert cycles(module_graph(tmp_path / "toy")) == []
