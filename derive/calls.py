r"""How a loss is called: a restricted call expression (``--call``), or one recognised from the
signature.

A call expression names the loss ``fn`` and the values the audit or the trace supplies,
``student``, ``teacher``, ``T``, ``target`` and ``mask``, with literals (numbers, strings,
``True``/``False``/``None``, and dicts, lists and tuples of these): for example
``fn(student, teacher, beta=0.5, temperature=T)`` for TRL's generalized JSD, or
``fn(".", "output", ".", "output", temperature=T, alpha=0.5)({".": {"output": student}},
{".": {"output": teacher}}, target)`` for a torchdistill loss module (construct, then call).
It is parsed with :mod:`ast` and checked node by node against a whitelist; it is never
evaluated as Python: :meth:`CallSpec.invoke` walks the checked tree itself. Anything else
(attributes, subscripts, lambdas, comprehensions, ``*args``, f-strings, other names) is one
:class:`~derive.DeriveError` naming what is not allowed.

Without an expression, :func:`recognise` reads the signature: a function whose parameter is
named ``temperature``, ``tau``, ``T`` or ``temp`` gets ``T`` by that keyword; an ``nn.Module``
subclass whose constructor takes the temperature is constructed with it, then called (with
torchdistill's ``io_dict`` convention when its constructor takes the module paths); anything
else is called ``fn(student, teacher, T)``, as before. Torch is not imported here.

Examples
========

>>> spec = parse_call("fn(student, teacher, beta=0.5, temperature=T)")
>>> spec.invoke(lambda s, t, beta, temperature: (s, t, beta, temperature),
...             student="z", teacher="v", T=4.0)
('z', 'v', 0.5, 4.0)
>>> spec.uses("target"), spec.text
(False, 'fn(student, teacher, beta=0.5, temperature=T)')
>>> parse_call('__import__("os")._exit(0)')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
derive._errors.DeriveError: --call: calling anything but fn (attribute access) is not allowed; ...
>>> recognise(lambda student_logits, teacher_logits, labels=None, temperature=1.0: 0).text
'fn(student, teacher, temperature=T)'
"""

import ast
import inspect
from dataclasses import dataclass

from ._errors import DeriveError, check_argument

__all__ = [
    "NAMES",
    "TEMPERATURE_NAMES",
    "CallSpec",
    "parse_call",
    "recognise",
    "resolve_call",
    "bind",
]

#: The names a call expression may use besides literals.
NAMES = ("fn", "student", "teacher", "T", "target", "mask")
#: Parameter names recognised as the temperature.
TEMPERATURE_NAMES = ("temperature", "tau", "T", "temp")
#: Parameter names recognised as the class labels (``target``) and the token mask.
TARGET_NAMES = ("target", "targets")
#: The longest call expression accepted, and its deepest nesting.
MAX_LENGTH = 1000
MAX_DEPTH = 12

_EXAMPLE = "e.g. 'fn(student, teacher, temperature=T)'"
_WHAT = "a call expression names only " + ", ".join(NAMES) + " and literals, " + _EXAMPLE
_TORCHDISTILL_PATHS = (
    "student_module_path",
    "student_module_io",
    "teacher_module_path",
    "teacher_module_io",
)


@dataclass(frozen=True)
class CallSpec:
    """A checked call expression: ``text`` as shown in reports, ``how`` it was chosen
    (``"--call"``, ``"recognised"``, ``"default"``), and the checked tree."""

    text: str
    how: str
    tree: ast.expr

    def uses(self, name):
        """Whether the expression uses the bound name ``name`` (``"target"``, ``"mask"``)."""
        return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(self.tree))

    def invoke(self, fn, **values):
        """Perform the call with ``fn`` and the bound ``values`` (``student``, ``teacher``,
        ``T``, ``target``, ``mask``); a name used but not bound is a :class:`DeriveError`."""
        return _Interpreter(dict(values, fn=fn)).value(self.tree)

    def describe(self):
        """``'fn(student, teacher, temperature=T) (recognised from the signature)'``."""
        suffix = {
            "--call": " (--call)",
            "recognised": " (recognised from the signature)",
            "default": "",
        }[self.how]
        return self.text + suffix


def parse_call(text, *, how="--call"):
    """The :class:`CallSpec` of a call expression; one :class:`DeriveError` line if it is not
    one."""
    check_argument(
        isinstance(text, str) and 0 < len(text.strip()) <= MAX_LENGTH,
        "--call must be a call expression of at most {} characters ({}), got {!r}",
        MAX_LENGTH,
        _EXAMPLE,
        text if not isinstance(text, str) else text[:80],
    )
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise DeriveError(
            f"--call: {text.strip()[:80]!r} is not a Python call expression "
            f"({getattr(error, 'msg', type(error).__name__)}); {_EXAMPLE}"
        ) from None
    check_argument(
        isinstance(tree, ast.Call), "--call must be a call of fn, {}, got {!r}", _EXAMPLE, text
    )
    _check(tree, depth=0, callee=False)
    innermost = tree
    while isinstance(innermost, ast.Call):
        innermost = innermost.func
    check_argument(
        isinstance(innermost, ast.Name) and innermost.id == "fn",
        "--call must call fn (the loss), {}, got {!r}",
        _EXAMPLE,
        text,
    )
    return CallSpec(text.strip(), how, tree)


def _refuse(what):
    raise DeriveError(f"--call: {what} is not allowed; {_WHAT}")


def _check(node, *, depth, callee):
    """Refuse every node outside the whitelist (``callee``: the node is a call's function)."""
    if depth > MAX_DEPTH:
        raise DeriveError(f"--call: nested deeper than {MAX_DEPTH} levels; {_EXAMPLE}")
    if isinstance(node, ast.Call):
        _check(node.func, depth=depth + 1, callee=True)
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                _refuse("*args")
            _check(argument, depth=depth + 1, callee=False)
        for keyword in node.keywords:
            if keyword.arg is None:
                _refuse("**kwargs")
            _check(keyword.value, depth=depth + 1, callee=False)
        return
    if callee and not (isinstance(node, ast.Name) and node.id == "fn"):
        _refuse(f"calling anything but fn ({_shown(node)})")
    if isinstance(node, ast.Name):
        if node.id not in NAMES:
            _refuse(f"the name {node.id!r}")
        if node.id == "fn" and not callee:
            _refuse("fn other than as the function called")
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bytes, type(...))) or isinstance(node.value, complex):
            _refuse(f"the literal {node.value!r}")
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        if isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
            return
        _refuse("a minus sign other than on a number")
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if key is None:
                _refuse("**mapping in a dict")
            if not (isinstance(key, ast.Constant) and isinstance(key.value, (str, int))):
                _refuse("a dict key other than a string or an integer")
            _check(value, depth=depth + 1, callee=False)
        return
    if isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            if isinstance(element, ast.Starred):
                _refuse("*unpacking")
            _check(element, depth=depth + 1, callee=False)
        return
    _refuse(_shown(node))


def _shown(node):
    names = {
        ast.Attribute: "attribute access",
        ast.Subscript: "subscripts",
        ast.Lambda: "a lambda",
        ast.JoinedStr: "an f-string",
        ast.BinOp: "arithmetic",
        ast.BoolOp: "and/or",
        ast.Compare: "comparisons",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment expression",
    }
    for kind, name in names.items():
        if isinstance(node, kind):
            return name
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return "a comprehension"
    return f"a {type(node).__name__} expression"


class _Interpreter:
    """Walks a checked tree: names from ``values``, literals as written, calls performed."""

    def __init__(self, values):
        self.values = values

    def value(self, node):
        if isinstance(node, ast.Call):
            function = self.value(node.func)
            arguments = [self.value(argument) for argument in node.args]
            keywords = {keyword.arg: self.value(keyword.value) for keyword in node.keywords}
            return function(*arguments, **keywords)
        if isinstance(node, ast.Name):
            if self.values.get(node.id) is None and node.id != "fn":
                raise DeriveError(f"--call uses {node.id}, which is not available here")
            return self.values[node.id]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            return -node.operand.value
        if isinstance(node, ast.Dict):
            return {key.value: self.value(value) for key, value in zip(node.keys, node.values)}
        if isinstance(node, ast.List):
            return [self.value(element) for element in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.value(element) for element in node.elts)
        raise DeriveError(f"--call: unchecked node {type(node).__name__}")  # never: _check


# -- recognised signatures ---------------------------------------------------------------------


def _parameters(callable_):
    try:
        return list(inspect.signature(callable_).parameters.values())
    except (TypeError, ValueError):
        return None


def _is_module_class(fn):
    return inspect.isclass(fn) and any(
        base.__name__ == "Module" and base.__module__.startswith("torch.nn")
        for base in inspect.getmro(fn)
    )


def _temperature(parameters):
    for parameter in parameters:
        if parameter.name in TEMPERATURE_NAMES and parameter.kind in (
            parameter.POSITIONAL_OR_KEYWORD,
            parameter.KEYWORD_ONLY,
        ):
            return parameter.name
    return None


def _extras(parameters, *, mask, labels):
    """Keyword arguments for target, mask and Hugging Face labels the parameters take."""
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    extras = []
    target = next((name for name in TARGET_NAMES if name in names), None)
    if target is not None:
        extras.append(f"{target}=target")
    if mask and "mask" in names:
        extras.append("mask=mask")
    if labels and "labels" in names:
        extras.append("labels=mask")
    return extras


def recognise(fn, *, mask=False, labels=False):
    """The :class:`CallSpec` that the signature of ``fn`` suggests, or ``None`` for the
    default ``fn(student, teacher, T)`` (whose target and mask the caller handles as before).

    ``mask``: a boolean token mask is available (passed as ``mask=`` to a parameter of that
    name); ``labels``: Hugging Face labels are (passed as ``labels=`` to a parameter of that
    name). A class that cannot be recognised is a :class:`DeriveError` asking for ``--call``.
    """
    if _is_module_class(fn):
        return _recognise_module(fn, mask=mask, labels=labels)
    parameters = _parameters(fn)
    if parameters is None:
        return None
    temperature = _temperature(parameters)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if (
        temperature is None
        or len(positional) < 2
        or temperature in {p.name for p in positional[:2]}
    ):
        return None
    if len(positional) >= 3 and positional[2].name == temperature:
        return None  # fn(student, teacher, T) already: the default call
    arguments = ["student", "teacher", f"{temperature}=T"]
    arguments += _extras(parameters[2:], mask=mask, labels=labels)
    return parse_call(f"fn({', '.join(arguments)})", how="recognised")


def _recognise_module(cls, *, mask, labels):
    name = getattr(cls, "__qualname__", repr(cls))
    constructor = _parameters(cls.__init__) or []
    constructor = [p for p in constructor[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    temperature = _temperature(constructor)
    check_argument(
        temperature is not None,
        "{} is an nn.Module class whose constructor takes no temperature ({}); say how to "
        "build and call it with --call, e.g. 'fn(tau=T)(student, teacher)'",
        name,
        "/".join(TEMPERATURE_NAMES),
    )
    given = [f"{temperature}=T"]
    names = [p.name for p in constructor]
    io_dicts = all(path in names for path in _TORCHDISTILL_PATHS)
    if io_dicts:
        given = ['".", "output", ".", "output"'] + given
    required = [
        p.name
        for p in constructor
        if p.default is p.empty and p.name != temperature and not (io_dicts and p.name in names[:4])
    ]
    check_argument(
        not required,
        "{}'s constructor needs {} besides the temperature; say how to build it with --call, "
        "e.g. 'fn(..., {}=T)(student, teacher)'",
        name,
        ", ".join(required),
        temperature,
    )
    forward = _parameters(getattr(cls, "forward", None)) or []
    forward = [p for p in forward[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    inputs = (
        ['{".": {"output": student}}', '{".": {"output": teacher}}']
        if io_dicts
        else ["student", "teacher"]
    )
    inputs += _extras(forward[2:], mask=mask, labels=labels)
    return parse_call(f"fn({', '.join(given)})({', '.join(inputs)})", how="recognised")


def resolve_call(fn, call=None, *, mask=False, labels=False):
    """``call`` (text or :class:`CallSpec`) checked, or the signature's :func:`recognise`."""
    if isinstance(call, CallSpec):
        return call
    if call is not None:
        return parse_call(call)
    return recognise(fn, mask=mask, labels=labels)


def bind(fn, spec):
    """``fn`` called through ``spec`` as a loss ``loss(student, teacher, T)``, named like ``fn``
    (what :func:`derive.trace` takes); ``spec`` must not use ``target`` or ``mask``."""
    for name in ("target", "mask"):
        check_argument(
            not spec.uses(name),
            "the call {} uses {}: a trace takes student and teacher logits [B, N] and T only",
            spec.text,
            name,
        )

    def loss(student, teacher, T):
        return spec.invoke(fn, student=student, teacher=teacher, T=T)

    for attribute in ("__module__", "__qualname__", "__name__"):
        value = getattr(fn, attribute, None)
        if value is not None:
            setattr(loss, attribute, value)
    return loss
