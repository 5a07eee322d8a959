r"""A small AST-based mutation tester: mutate one module, run the tests that reach the mutated
line, count the mutants they kill.

Why not mutmut alone: mutmut 3 leaves module-level code unmutated (the tolerances of
``verify/tolerances.py`` are module constants) and skips decorated functions (the
``lru_cache``-d ``_symbolic_terms`` of the expansion, the statements registered by decorators);
docs/mutation-testing.md says where it does the same job (``derive/statements/_common.py``,
configured in pyproject.toml's ``[tool.mutmut]``) and compares the two there. This runner

* imports the heavy third-party packages once (torch, sympy, hypothesis, pytest) and forks a
  fresh child per mutant, which imports the project from scratch with the mutated module served
  by an import hook: nothing of the project is cached across mutants;
* measures, once per module, which tests execute which lines of it (each test from cold caches:
  every ``lru_cache`` of the project is cleared before each test; lines run while a fixture is
  set up count for every test that uses that fixture), and runs for a mutant only the tests that
  execute its lines, fastest first, stopping at the first failure;
* kills a mutant whose tests fail, error, or run past a timeout (3x their clean time + 20 s).

Operators: comparison swaps (``<``/``<=``, ``==``/``!=``, ``is``/``is not``, ``in``/``not in``),
arithmetic swaps (``+``/``-``, ``*``/``/``, ``**`` -> ``*``, shifts, bit operators), ``and``/``or``,
dropped ``not`` and unary minus, constants (an int n -> n + 1, a float x -> 10x and x/10, booleans
flipped), ``min``/``max`` swapped, ``return x`` -> ``return None``, a call statement or augmented
assignment deleted, ``continue`` -> ``break``, an ``if`` condition forced to ``True`` and to
``False``. Strings, docstrings, ``__all__`` and ``lru_cache`` sizes are left alone.

Usage (from the repository root; results go to ``.mutation/``, which git ignores)::

    python tools/mutate.py run derive/series.py      # the selection of tools/mutation_targets.toml
    python tools/mutate.py run derive/series.py --tests tests/test_series.py --lines 300-340
    python tools/mutate.py run derive/series.py --sample 100 --seed 0   # a reproducible sample
    python tools/mutate.py report derive/series.py           # score and surviving mutants
    python tools/mutate.py show derive/series.py 17          # the diff of mutant 17
    python tools/mutate.py equivalents                        # every listed equivalent still exists
    python tools/mutate.py record derive/series.py           # its scores into mutation_scores.json
    python tools/mutate.py scores --write README.md docs/mutation-testing.md  # the tables from them

Mutants run one at a time, each in its own forked child.
"""

import argparse
import ast
import difflib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import sys
import time

import mutation_scores
import pytest

# The project mutated: this repository, or (for the runner's own tests) the directory in
# MUTATION_ROOT, whose packages MUTATION_PACKAGES names (comma-separated).
ROOT = os.environ.get("MUTATION_ROOT") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))
)
OUT = os.path.join(ROOT, ".mutation")
# The children end with os._exit, which skips verify's clean-up of its private hypothesis
# directory: give them one shared directory under .mutation/ instead of one temporary each.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(OUT, "hypothesis"))
TARGETS = os.path.join(ROOT, "tools", "mutation_targets.toml")


# -- mutants ---------------------------------------------------------------------------------

_SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.And: ast.Or,
    ast.Or: ast.And,
}
_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.And: "and",
    ast.Or: "or",
}


def _read(path, errors=None):
    """The text of a file, closed after reading (an open file left to the collector is a
    ResourceWarning, an error under the suite's filterwarnings)."""
    with open(path, errors=errors) as handle:
        return handle.read()


def _is_string(node):
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    )


def _docstring_nodes(tree):
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and _is_string(body[0].value):
                skip.add(id(body[0]))
    return skip


def _skipped_subtrees(tree):
    """ids of nodes below which nothing is mutated: docstrings, ``__all__``, annotations,
    ``lru_cache(maxsize=...)``, strings."""
    skip = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skip.add(id(node))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.returns is not None:
                skip.add(id(node.returns))
            for arg in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
                if arg.annotation is not None:
                    skip.add(id(arg.annotation))
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and getattr(decorator.func, "id", "") == "lru_cache"
                ):
                    skip.add(id(decorator))
        if isinstance(node, ast.AnnAssign):
            skip.add(id(node.annotation))
        if isinstance(node, ast.JoinedStr):
            skip.add(id(node))
    return skip


def _walk(tree, skip):
    """Nodes with their parents, outside the skipped subtrees."""
    stack = [(tree, None, None)]
    while stack:
        node, parent, field = stack.pop()
        if id(node) in skip:
            continue
        yield node, parent, field
        for name, value in reversed(list(ast.iter_fields(node))):
            if isinstance(value, list):
                for child in reversed(value):
                    if isinstance(child, ast.AST):
                        stack.append((child, node, name))
            elif isinstance(value, ast.AST):
                stack.append((value, node, name))


def _module_level_lines(tree):
    """Lines of statements executed at import (outside function bodies)."""
    lines = set()

    def visit(body):
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in statement.decorator_list:
                    lines.update(range(decorator.lineno, decorator.end_lineno + 1))
                for default in statement.args.defaults + [
                    d for d in statement.args.kw_defaults if d
                ]:
                    lines.update(range(default.lineno, default.end_lineno + 1))
                continue
            if isinstance(statement, ast.ClassDef):
                visit(statement.body)
                continue
            lines.update(range(statement.lineno, statement.end_lineno + 1))

    visit(tree.body)
    return lines


def mutants(source):
    """Every mutant of ``source``: dicts with ``id``, ``line``, ``end_line``, ``operator``,
    ``description`` and the path to the mutated node (to rebuild it)."""
    tree = ast.parse(source)
    skip = _skipped_subtrees(tree)
    found = []
    order = {}
    for index, (node, _parent, _field) in enumerate(_walk(tree, skip)):
        order[id(node)] = index

    def add(node, operator, description, apply):
        found.append(
            {
                "line": node.lineno,
                "end_line": node.end_lineno,
                "operator": operator,
                "description": description,
                "node": order[id(node)],
                "apply": apply,
                "_node": node,
            }
        )

    for node, _parent, _field in _walk(tree, skip):
        if isinstance(node, ast.BinOp) and type(node.op) in _SWAPS:
            if isinstance(node.op, (ast.Add, ast.Mod)) and (
                _is_string(node.left) or _is_string(node.right)
            ):
                continue
            new = _SWAPS[type(node.op)]
            add(
                node, "binop", f"{_SYMBOLS[type(node.op)]} -> {_SYMBOLS[new]}", ("op", new.__name__)
            )
        elif isinstance(node, ast.AugAssign) and type(node.op) in _SWAPS:
            new = _SWAPS[type(node.op)]
            add(
                node,
                "augassign",
                f"{_SYMBOLS[type(node.op)]}= -> {_SYMBOLS[new]}=",
                ("op", new.__name__),
            )
            add(node, "delete", "augmented assignment deleted", ("delete",))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                new = _SWAPS[type(op)]
                add(
                    node,
                    "compare",
                    f"{_SYMBOLS[type(op)]} -> {_SYMBOLS[new]}",
                    ("cmpop", k, new.__name__),
                )
        elif isinstance(node, ast.BoolOp):
            new = _SWAPS[type(node.op)]
            add(
                node,
                "boolop",
                f"{_SYMBOLS[type(node.op)]} -> {_SYMBOLS[new]}",
                ("op", new.__name__),
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            add(node, "unary", "not dropped", ("unwrap",))
        elif (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and not isinstance(node.operand, ast.Constant)
        ):
            add(node, "unary", "unary minus dropped", ("unwrap",))
        elif (
            isinstance(node, ast.Constant)
            and not isinstance(node.value, (str, bytes))
            and node.value is not None
            and node.value is not Ellipsis
        ):
            value = node.value
            if isinstance(value, bool):
                add(node, "constant", f"{value} -> {not value}", ("const", not value))
            elif isinstance(value, int):
                add(node, "constant", f"{value} -> {value + 1}", ("const", value + 1))
            elif isinstance(value, float):
                if value == 0:
                    add(node, "constant", "0.0 -> 1.0", ("const", 1.0))
                else:
                    add(node, "constant", f"{value!r} -> {value * 10!r}", ("const", value * 10))
                    add(node, "constant", f"{value!r} -> {value / 10!r}", ("const", value / 10))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("min", "max")
        ):
            new = "max" if node.func.id == "min" else "min"
            add(node, "call", f"{node.func.id} -> {new}", ("rename", new))
        elif (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            add(node, "return", "return value -> None", ("return_none",))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            add(node, "delete", "call statement deleted", ("delete",))
        elif isinstance(node, ast.Continue):
            add(node, "delete", "continue -> break", ("break",))
        elif isinstance(node, ast.If):
            add(node.test, "if", "condition -> True", ("condition", True))
            add(node.test, "if", "condition -> False", ("condition", False))
    parents = _parents(tree)
    seen = {}
    for number, mutant in enumerate(found):
        mutant["id"] = number
        node = mutant.pop("_node")
        key = f"{_scope(node, parents)} | {_code(node, parents)} | {mutant['description']}"
        seen[key] = seen.get(key, 0) + 1
        mutant["key"] = key if seen[key] == 1 else f"{key} #{seen[key]}"
    return found


def _parents(tree):
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _scope(node, parents):
    """The qualified name of the function or class holding ``node`` (``<module>`` outside)."""
    names, current = [], parents.get(id(node))
    while current is not None:
        if isinstance(current, _SCOPES):
            names.append(current.name)
        current = parents.get(id(current))
    return ".".join(reversed(names)) or "<module>"


def _code(node, parents):
    """The mutated code without its layout: the mutated node unparsed on one line; a constant,
    a name or a negation with the expression (or simple statement) around it, so that ``3``
    reads ``LIMIT = 3`` or ``x * 3``; a compound statement by its first line."""
    shown = node
    while isinstance(shown, (ast.Constant, ast.Name, ast.UnaryOp, ast.keyword)):
        parent = parents.get(id(shown))
        if parent is None or isinstance(parent, (*_SCOPES, ast.Module, ast.arguments)):
            break
        shown = parent
    text = ast.unparse(shown)
    if isinstance(shown, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
        text = text.splitlines()[0]
    text = " ".join(text.split())
    return text if len(text) <= 100 else text[:97] + "..."


def mutate(source, mutant):
    """The mutated module, as a code-ready AST."""
    tree = ast.parse(source)
    skip = _skipped_subtrees(tree)
    nodes = [(node, parent, field) for node, parent, field in _walk(tree, skip)]
    node, parent, field = nodes[mutant["node"]]
    action = mutant["apply"]
    kind = action[0]
    if kind == "condition":
        # node is an If's test: replace it in its If.
        replacement = ast.Constant(action[1])
        _replace(parent, field, node, ast.copy_location(replacement, node))
    elif kind == "op":
        node.op = getattr(ast, action[1])()
    elif kind == "cmpop":
        node.ops[action[1]] = getattr(ast, action[2])()
    elif kind == "unwrap":
        _replace(parent, field, node, node.operand)
    elif kind == "const":
        node.value = action[1]
    elif kind == "rename":
        node.func = ast.copy_location(ast.Name(action[1], ast.Load()), node.func)
    elif kind == "return_none":
        node.value = ast.copy_location(ast.Constant(None), node.value)
    elif kind == "assign_none":
        node.value = ast.copy_location(ast.Constant(None), node.value)
    elif kind == "delete":
        _replace(parent, field, node, ast.copy_location(ast.Pass(), node))
    elif kind == "break":
        _replace(parent, field, node, ast.copy_location(ast.Break(), node))
    else:
        raise ValueError(kind)
    ast.fix_missing_locations(tree)
    return tree


def _replace(parent, field, old, new):
    value = getattr(parent, field)
    if isinstance(value, list):
        value[value.index(old)] = new
    else:
        setattr(parent, field, new)


def diff(source, mutant, path):
    """A unified diff of the mutated lines (the mutated statement unparsed)."""
    tree = mutate(source, mutant)
    lines = source.splitlines(keepends=True)
    # Find the smallest statement holding the mutation and unparse it.
    target = None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.stmt)
            and node.lineno <= mutant["line"]
            and node.end_lineno >= mutant["end_line"]
            and not isinstance(
                node, (ast.FunctionDef, ast.ClassDef, ast.If, ast.For, ast.While, ast.With, ast.Try)
            )
        ):
            if target is None or node.end_lineno - node.lineno <= target.end_lineno - target.lineno:
                target = node
    if target is None:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and node.test.lineno == mutant["line"]:
                target = node.test
                break
    if target is None:
        return f"{path}:{mutant['line']}: {mutant['description']}\n"
    start, end = target.lineno, target.end_lineno
    indent = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
    text = ast.unparse(target)
    if isinstance(target, ast.expr):
        text = lines[start - 1].split("if", 1)[0] + "if " + text + ":"
        new = [text + "\n"]
    else:
        new = [indent + line + "\n" for line in text.splitlines()]
    return "".join(
        difflib.unified_diff(
            lines[start - 1 : end],
            new,
            f"{path}:{start}",
            f"{path}:{start} (mutant {mutant['id']})",
        )
    )


# -- running tests in forked children ----------------------------------------------------------


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, name, path, code):
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        loader = _MutantLoader(fullname, self.path, self.code)
        is_package = os.path.basename(self.path) == "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname,
            self.path,
            loader=loader,
            submodule_search_locations=[os.path.dirname(self.path)] if is_package else None,
        )


class _MutantLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname, path, code):
        super().__init__(fullname, path)
        self._code = code

    def get_code(self, fullname):
        return self._code


def module_name(path):
    relative = os.path.relpath(os.path.abspath(path), ROOT)
    parts = relative[:-3].split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _preload():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Plugins: only hypothesis's (the others, loaded from entry points, cost time per child).
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    for name in (
        "torch",
        "numpy",
        "sympy",
        "mpmath",
        "flint",
        "hypothesis",
        "pytest",
        "_pytest.doctest",
        "_pytest.python",
        "_hypothesis_pytestplugin",
        "matplotlib",
        "matplotlib.pyplot",
        "torch.func",
        "torch.fx",
    ):
        try:
            __import__(name)
        except Exception:
            pass
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    tests = os.path.join(ROOT, "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def _fork(child, timeout, log):
    """Run ``child()`` (returning an exit code) in a forked process group; ``(status, seconds)``
    with status an exit code, or ``"timeout"``."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            os.setpgid(0, 0)
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            os.chdir(ROOT)
            code = child()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 3
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 3)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            seconds = time.monotonic() - start
            if os.WIFEXITED(status):
                return os.WEXITSTATUS(status), seconds
            return f"signal {os.WTERMSIG(status)}", seconds
        if time.monotonic() - start > timeout:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - start
        time.sleep(0.05)


# --assert=plain: pytest's assertion-rewriting import hook serves every module named on the
# command line (a module's doctests are selected by its path) from the file on disk, ahead of
# the mutant's import hook; with it off, asserts still fail, with shorter messages.
PYTEST_BASE = [
    "-p",
    "no:cacheprovider",
    "-p",
    "_hypothesis_pytestplugin",
    "-o",
    "addopts=",
    "-W",
    "ignore::DeprecationWarning",
    "--assert=plain",
]


def _freeze():
    """Move every object allocated so far out of the collector's sight: a child's
    ``gc.collect`` (pytest runs several) then does not walk, and copy, the parent's heap."""
    import gc

    gc.collect()
    gc.freeze()


def _pytest_args(node_ids, doctests):
    args = ["-x", "-q", "-rfE", "--tb=line"] + PYTEST_BASE
    if doctests:
        args.append("--doctest-modules")
    return args + list(node_ids)


PROJECT_PACKAGES = tuple(os.environ.get("MUTATION_PACKAGES", "derive,verify").split(","))


def _project_modules():
    """``{module name: path}`` of every module of the project's packages."""
    modules = {}
    for package in PROJECT_PACKAGES:
        for directory, _, files in os.walk(os.path.join(ROOT, package)):
            for file in files:
                if file.endswith(".py"):
                    path = os.path.join(directory, file)
                    modules[module_name(path)] = path
    return modules


def _imports(name, path, modules):
    """Project modules that module ``name`` imports (anywhere in it, function bodies too)."""
    tree = ast.parse(_read(path))
    package = name if os.path.basename(path) == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)  # its package's __init__ runs, but is not depended on
            for alias in node.names:
                found.add(f"{target}.{alias.name}")
    return {m for m in found if m in modules and m != name}


def downstream(name):
    """The module ``name`` and every project module that imports it, directly or not: what a
    child process must import afresh when ``name`` is mutated."""
    modules = _project_modules()
    importers = {}
    for module, path in modules.items():
        for imported in _imports(module, path, modules):
            importers.setdefault(imported, set()).add(module)
    result, stack = {name}, [name]
    while stack:
        for importer in importers.get(stack.pop(), ()):
            if importer not in result:
                result.add(importer)
                stack.append(importer)
    return result


def _purge(names):
    """Forget the modules ``names`` (they are imported again on first use); the kept
    submodules of a purged package are bound again to the package once it is re-imported."""
    kept = {}
    for module in list(sys.modules):
        if module in names:
            del sys.modules[module]
        elif module.split(".")[0] in PROJECT_PACKAGES:
            kept[module] = sys.modules[module]

    def rebind():
        for module, value in kept.items():
            parent, _, child = module.rpartition(".")
            if parent in sys.modules and not hasattr(sys.modules[parent], child):
                setattr(sys.modules[parent], child, value)

    return rebind


def _clear_caches(names):
    """Clear the ``lru_cache``s of the modules ``names``."""
    import functools
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objects = [obj for obj in gc.get_objects() if isinstance(obj, functools._lru_cache_wrapper)]
    for obj in objects:
        if (getattr(obj, "__module__", "") or "") in names:
            obj.cache_clear()


class _RebindPlugin:
    """Binds kept submodules to re-imported packages once the tests are collected."""

    def __init__(self, rebind):
        self.rebind = rebind

    def pytest_collection_finish(self, session):
        self.rebind()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self.rebind()


# -- coverage: which test runs which lines ------------------------------------------------------


class _CoveragePlugin:
    """Records, per test, the lines of ``path`` it executes (fixture setups counted for every
    test that uses the fixture), and its duration and outcome; coverage.py's C tracer does the
    tracing, one dynamic context per test and per fixture."""

    IMPORT = "import"

    def __init__(self, path, purged):
        import coverage

        self.path = path
        self.purged = purged
        self.coverage = coverage.Coverage(data_file=None, include=[path], config_file=False)
        self.context = self.IMPORT
        self.fixture_names = {}
        self.durations = {}
        self.outcomes = {}

    def start(self):
        self.coverage.start()
        self.coverage.switch_context(self.IMPORT)

    def _switch(self, context):
        previous = self.context
        self.context = context
        self.coverage.switch_context(context)
        return previous

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        previous = self._switch("fixture:" + fixturedef.argname)
        try:
            return (yield)
        finally:
            self._switch(previous)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        _clear_caches(self.purged)
        previous = self._switch(item.nodeid)
        start = time.monotonic()
        try:
            return (yield)
        finally:
            self.durations[item.nodeid] = time.monotonic() - start
            self.fixture_names[item.nodeid] = sorted(getattr(item, "fixturenames", ()))
            self._switch(previous)

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")

    def finish(self):
        """``(per_test, import_lines)``: lines per test id, and lines run outside any test."""
        self.coverage.stop()
        data = self.coverage.get_data()
        by_context = {}
        for line, contexts in (data.contexts_by_lineno(self.path) or {}).items():
            for context in contexts:
                by_context.setdefault(context, set()).add(line)
        per_test = {}
        for test, names in self.fixture_names.items():
            lines = set(by_context.get(test, ()))
            for name in names:
                lines |= by_context.get("fixture:" + name, set())
            per_test[test] = lines
        return per_test, by_context.get(self.IMPORT, set()) | by_context.get("", set())


def measure(path, selection, out, purged):
    """Run the selection once with line tracing, in a forked child; write the coverage map."""
    path = os.path.abspath(path)

    def child():
        rebind = _purge(purged)
        plugin = _CoveragePlugin(path, purged)
        plugin.start()
        args = ["-q"] + PYTEST_BASE
        if any(not s.split("::")[0].startswith("tests") for s in selection):
            args.append("--doctest-modules")
        code = pytest.main(args + list(selection), plugins=[plugin, _RebindPlugin(rebind)])
        per_test, import_lines = plugin.finish()
        with open(out, "w") as handle:
            json.dump(
                {
                    "per_test": {k: sorted(v) for k, v in per_test.items()},
                    "import_lines": sorted(import_lines),
                    "durations": plugin.durations,
                    "outcomes": plugin.outcomes,
                    "exit_code": int(code),
                },
                handle,
            )
        return int(code)

    log = out + ".log"
    status, seconds = _fork(child, 4 * 3600, log)
    return status, seconds, log


# -- the run ------------------------------------------------------------------------------------


def load_targets():
    import tomllib

    with open(TARGETS, "rb") as handle:
        return tomllib.load(handle)


def _state_path(path):
    return os.path.join(OUT, module_name(path) + ".json")


def _parse_lines(text):
    if not text:
        return None
    start, _, end = text.partition("-")
    return int(start), int(end or start)


def run(args):
    _preload()
    os.makedirs(OUT, exist_ok=True)
    path = args.module
    absolute = os.path.abspath(path)
    source = _read(absolute)
    targets = load_targets()
    entry = targets.get(path, {})
    selection = args.tests or entry.get("tests", [])
    if not selection:
        sys.exit(f"no tests for {path}: give --tests or add it to {TARGETS}")
    exclude = set(entry.get("exclude", [])) | set(args.exclude or [])
    slow = args.slow if args.slow is not None else entry.get("slow", 30.0)
    state_file = os.path.abspath(args.state or _state_path(path))
    os.makedirs(os.path.dirname(state_file), exist_ok=True)
    coverage_file = state_file.replace(".json", ".coverage.json")

    name = module_name(path)
    purged = downstream(name)
    warm = entry.get("warm")
    if warm:
        # Warm the caches of the modules the mutant cannot change, once, in this process.
        print(f"warming: {warm}", flush=True)
        started = time.monotonic()
        exec(compile(warm, "<warm>", "exec"), {})
        print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    _freeze()
    loaded = {m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES}
    print(
        f"{len(purged)} modules import {name} (imported afresh per mutant); "
        f"{len(loaded - purged)} kept warm",
        flush=True,
    )

    if args.remeasure or not os.path.exists(coverage_file) or args.tests:
        print(f"measuring coverage of {path} by {' '.join(selection)} ...", flush=True)
        status, seconds, log = measure(absolute, selection, coverage_file, purged)
        print(f"  done in {seconds:.0f} s (exit {status})", flush=True)
        if not os.path.exists(coverage_file):
            sys.exit(f"coverage run failed, see {log}")
    coverage = json.loads(_read(coverage_file))
    failing = [t for t, o in coverage["outcomes"].items() if o == "failed"]
    if failing:
        print("tests failing on the clean module (left out):\n  " + "\n  ".join(failing))
    durations = coverage["durations"]
    usable = {
        t: set(lines)
        for t, lines in coverage["per_test"].items()
        if t not in failing
        and coverage["outcomes"].get(t) != "skipped"
        and not any(t.startswith(x) for x in exclude)
        and durations.get(t, 0) <= slow
    }
    left_out = sorted(t for t in coverage["per_test"] if t not in usable)
    if left_out:
        print(
            f"{len(left_out)} tests not used (failing, skipped, excluded or slower than {slow} s)"
        )
    tree = ast.parse(source)
    # Lines run at import (module level, or in functions called at import): every test is a
    # candidate.
    module_lines = _module_level_lines(tree) | set(coverage["import_lines"])

    all_mutants = mutants(source)
    previous = {}
    # The sample a run drew (kept by later runs of the same state that draw none).
    sample = {"sample": args.sample, "seed": args.seed} if args.sample else None
    if os.path.exists(state_file) and not args.fresh:
        earlier = json.loads(_read(state_file))
        for m in earlier["mutants"]:
            previous[(m["line"], m["end_line"], m["description"], m["node"])] = m
        if sample is None and earlier.get("sample"):
            sample = {"sample": earlier["sample"], "seed": earlier.get("seed")}
    lines = _parse_lines(args.lines)
    chosen = None
    if args.sample:
        # A reproducible random sample of the mutants (ids are stable for one source).
        import random

        ids = [m["id"] for m in all_mutants if not lines or lines[0] <= m["line"] <= lines[1]]
        chosen = set(random.Random(args.seed).sample(ids, min(args.sample, len(ids))))
    results = []
    todo = []
    for m in all_mutants:
        key = (m["line"], m["end_line"], m["description"], m["node"])
        old = previous.get(key)
        m = {k: v for k, v in m.items()}
        if (lines and not (lines[0] <= m["line"] <= lines[1])) or (
            chosen is not None and m["id"] not in chosen
        ):
            if old:
                results.append(
                    {
                        **m,
                        **{k: old[k] for k in ("status", "killer", "seconds", "tests") if k in old},
                    }
                )
            else:
                results.append({**m, "status": "not run"})
            continue
        if (
            old
            and args.only_survivors
            and old.get("status") not in ("survived", "not run", "no tests")
        ):
            results.append(
                {**m, **{k: old[k] for k in ("status", "killer", "seconds", "tests") if k in old}}
            )
            continue
        todo.append(m)
        results.append(m)

    print(f"{len(all_mutants)} mutants of {path}; running {len(todo)}", flush=True)
    log_dir = os.path.join(OUT, "logs")
    os.makedirs(log_dir, exist_ok=True)
    started = time.monotonic()
    for count, m in enumerate(todo, 1):
        span = set(range(m["line"], m["end_line"] + 1))
        if span & module_lines:
            # Run at import: a test may depend on it without executing a line of the module
            # (a constant read by another module), so every test of the selection is a candidate.
            tests = list(usable)
        else:
            tests = [t for t, covered in usable.items() if covered & span]
        tests.sort(key=lambda t: durations.get(t, 0))
        m["tests"] = len(tests)
        if not tests:
            m["status"], m["killer"], m["seconds"] = "no tests", None, 0.0
        else:
            tree = mutate(source, m)
            try:
                code = compile(tree, absolute, "exec")
            except (SyntaxError, ValueError) as error:
                m["status"], m["killer"], m["seconds"] = "killed", f"compile: {error}", 0.0
                continue
            expected = sum(durations.get(t, 1.0) for t in tests)
            timeout = args.timeout or (3 * expected + 20)
            doctests = any("::" in t and not t.startswith("tests") for t in tests) or any(
                t.endswith(".py") and not t.startswith("tests") for t in tests
            )

            def child(code=code, tests=tests, doctests=doctests):
                rebind = _purge(purged)
                sys.meta_path.insert(0, _MutantFinder(name, absolute, code))
                return int(
                    pytest.main(_pytest_args(tests, doctests), plugins=[_RebindPlugin(rebind)])
                )

            log = os.path.join(log_dir, f"{name}.{m['id']}.log")
            status, seconds = _fork(child, timeout, log)
            m["seconds"] = round(seconds, 1)
            if status == 0:
                m["status"], m["killer"] = "survived", None
            elif status == "timeout":
                m["status"], m["killer"] = "killed", "timeout"
            elif status == 5:
                m["status"], m["killer"] = "survived", "no tests collected"
            else:
                m["status"], m["killer"] = "killed", _killer(log, status)
            if m["status"] == "survived" or status == "timeout":
                pass
            elif os.path.exists(log):
                os.unlink(log)
        if args.verbose or m["status"] != "killed":
            print(
                f"[{count}/{len(todo)} {time.monotonic() - started:.0f}s] #{m['id']} "
                f"{path}:{m['line']} {m['description']}: {m['status']}"
                f" ({m.get('tests')} tests, {m.get('seconds', 0)} s)",
                flush=True,
            )
        if count % 10 == 0:
            _save(state_file, path, results, coverage_file, selection, slow, sample)
    _save(state_file, path, results, coverage_file, selection, slow, sample)
    _print_score(path, results)
    if args.record:
        record(argparse.Namespace(module=path, state=state_file))


def _killer(log, status):
    try:
        text = _read(log, errors="replace")
    except OSError:
        return f"exit {status}"
    for line in text.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line[:200]
    return f"exit {status}"


def _save(state_file, path, results, coverage_file, selection, slow, sample=None):
    with open(state_file + ".tmp", "w") as handle:
        json.dump(
            {
                "module": path,
                "selection": selection,
                "slow": slow,
                **(sample or {}),
                "coverage": coverage_file,
                "mutants": [{k: v for k, v in m.items()} for m in results],
            },
            handle,
            indent=1,
        )
    os.replace(state_file + ".tmp", state_file)


def _score(results):
    ran = [m for m in results if m.get("status") != "not run"]
    killed = sum(m["status"] == "killed" for m in ran)
    return killed, len(ran)


def _print_score(path, results, equivalent=()):
    killed, total = _score(results)
    survivors = [m for m in results if m.get("status") in ("survived", "no tests")]
    print(
        f"{path}: {killed}/{total} killed ({100 * killed / max(total, 1):.1f} %), "
        f"{len(survivors)} survivors"
    )


def report(args):
    state = json.loads(_read(args.state or _state_path(args.module)))
    results = state["mutants"]
    source = _read(os.path.join(ROOT, args.module))
    equivalent = set(load_targets().get(args.module, {}).get("equivalent", []))
    current = mutants(source)
    for m in results:  # results of a run before mutants had keys: the ids name them
        if "key" not in m and len(current) == len(results):
            m["key"] = current[m["id"]]["key"]
    killed, total = _score(results)
    survivors = [m for m in results if m.get("status") in ("survived", "no tests")]
    not_equivalent = [m for m in survivors if _signature(m) not in equivalent]
    judged = total - len(survivors) + len(not_equivalent)  # the mutants not judged equivalent
    print(
        f"{args.module}: {total} mutants, {killed} killed ({100 * killed / max(total, 1):.1f} %); "
        f"{len(survivors) - len(not_equivalent)} survivors judged equivalent; "
        f"score without them {100 * killed / max(judged, 1):.1f} %"
    )
    for m in survivors if args.all else not_equivalent:
        mark = " [equivalent]" if _signature(m) in equivalent else ""
        print(f"--- #{m['id']} line {m['line']}: {m.get('key')} ({m['status']}){mark}")
        if args.diff:
            print(diff(source, m, args.module))
    for entry in stale_equivalents(args.module, source):
        print(f"stale equivalent entry (no such mutant now): {entry}")


def _signature(m):
    """How tools/mutation_targets.toml names a mutant: ``SCOPE | CODE | DESCRIPTION`` (with
    ``#k`` for the k-th identical one), by content, so that an entry survives edits elsewhere
    in the module and reformatting, and goes stale (reported) when its code changes."""
    return m["key"]


def stale_equivalents(module, source=None):
    """The ``equivalent`` entries of ``module`` in the targets that name no mutant of its
    current source."""
    if source is None:
        with open(os.path.join(ROOT, module)) as handle:
            source = handle.read()
    keys = {m["key"] for m in mutants(source)}
    listed = load_targets().get(module, {}).get("equivalent", [])
    return [entry for entry in listed if entry not in keys]


def equivalents(args):
    """Check that every listed equivalent mutant still exists; exit 1 if one does not."""
    modules = args.modules or list(load_targets())
    stale = {module: stale_equivalents(module) for module in modules}
    for module, entries in stale.items():
        listed = load_targets().get(module, {}).get("equivalent", [])
        print(f"{module}: {len(listed)} equivalent mutants listed, {len(entries)} stale")
        for entry in entries:
            print(f"  stale: {entry}")
    return 1 if any(stale.values()) else 0


def record(args):
    """Write a module's scores, from its state file, into tools/mutation_scores.json."""
    state = json.loads(_read(args.state or _state_path(args.module)))
    source = _read(os.path.join(ROOT, args.module))
    equivalent = load_targets().get(args.module, {}).get("equivalent", [])
    path = os.path.join(ROOT, mutation_scores.SUMMARY)
    summary = mutation_scores.load(path) if os.path.exists(path) else {}
    summary[args.module] = mutation_scores.entry_from_state(
        state, source, equivalent, summary.get(args.module)
    )
    mutation_scores.dump(summary, path)
    entry = summary[args.module]
    print(
        f"recorded {args.module} in {mutation_scores.SUMMARY}: {entry['killed']} of "
        f"{entry['ran']} killed, {entry['equivalent']} equivalent"
    )


def scores(args):
    """Print the tables written from tools/mutation_scores.json, or rewrite (or check) the marked
    tables of the given files."""
    summary = mutation_scores.load(os.path.join(ROOT, mutation_scores.SUMMARY))
    targets = load_targets()
    sources = {}
    for module in summary:
        if os.path.exists(os.path.join(ROOT, module)):
            sources[module] = _read(os.path.join(ROOT, module))
    for module in mutation_scores.stale(summary, sources):
        print(f"note: {module} has changed since its scores were run", file=sys.stderr)
    if not args.files:
        for name, table in mutation_scores.TABLES.items():
            print(f"<!-- mutation-scores: {name} -->\n{table(summary, targets)}")
        return 0
    differ = []
    for name in args.files:
        path = os.path.join(ROOT, name)
        text = _read(path)
        new = mutation_scores.render(text, summary, targets)
        if new != text:
            differ.append(name)
            if args.write:
                with open(path, "w") as handle:
                    handle.write(new)
    verb = "rewrote" if args.write else "differ from the recorded scores"
    for name in differ:
        print(f"{name}: {verb}")
    return 1 if differ and not args.write else 0


def show(args):
    source = _read(os.path.join(ROOT, args.module))
    for m in mutants(source):
        if m["id"] in args.ids:
            print(diff(source, m, args.module))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("module")
    p.add_argument("--tests", nargs="+", help="test selection (default: mutation_targets.toml)")
    p.add_argument("--exclude", nargs="+")
    p.add_argument("--slow", type=float, help="leave out tests slower than this (seconds)")
    p.add_argument("--lines", help="only mutants starting in this line range, e.g. 300-340")
    p.add_argument("--sample", type=int, help="only a random sample of this many mutants")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--timeout", type=float)
    p.add_argument("--state")
    p.add_argument("--fresh", action="store_true", help="forget earlier results")
    p.add_argument("--remeasure", action="store_true", help="measure coverage again")
    p.add_argument("--only-survivors", action="store_true", help="rerun only earlier survivors")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--record", action="store_true", help="then record the scores (see record)")
    p.set_defaults(func=run)
    p = sub.add_parser("record", help=f"write a module's scores into {mutation_scores.SUMMARY}")
    p.add_argument("module")
    p.add_argument("--state")
    p.set_defaults(func=record)
    p = sub.add_parser("scores", help=f"the tables written from {mutation_scores.SUMMARY}")
    p.add_argument("files", nargs="*", help="rewrite (--write) or check their marked tables")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    p.set_defaults(func=scores)
    p = sub.add_parser("report")
    p.add_argument("module")
    p.add_argument("--state")
    p.add_argument("--diff", action="store_true")
    p.add_argument("--all", action="store_true", help="equivalent survivors too")
    p.set_defaults(func=report)
    p = sub.add_parser("equivalents", help="check that every listed equivalent mutant exists")
    p.add_argument("modules", nargs="*")
    p.set_defaults(func=equivalents)
    p = sub.add_parser("show")
    p.add_argument("module")
    p.add_argument("ids", nargs="+", type=int)
    p.set_defaults(func=show)
    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
