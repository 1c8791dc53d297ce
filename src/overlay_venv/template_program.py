"""Templates as plain data, rendered without Jinja2.

Importing Jinja2 and loading a template costs a warm ``create`` about 40 ms, several times what the
rendering itself takes. So Jinja2 parses each template once (its lexer applies the whitespace rules:
``trim_blocks``, ``lstrip_blocks``, ``-`` markers), :func:`compile_template` turns the parsed tree
into nested tuples that ``marshal`` stores (templates.py caches them per template content), and
:func:`run` renders those with the standard library alone.

Only the part of the language the templates use is supported: output, ``if``/``elif``/``else``,
``for`` (with ``loop.index`` and friends, tuple targets, a filter condition, ``else``), ``set``,
macros with defaults, calls, ``~`` and arithmetic, comparisons, ``and``/``or``/``not``, conditional
expressions, literals, attribute and item access, and the filters in :data:`FILTERS` plus those the
caller passes (``q``). Anything else raises :class:`Unsupported` when compiling, and templates.py
then renders that template with Jinja2, as before. Scoping follows Jinja2: a ``for`` body and a macro
body have their own variables, an ``if`` does not; a macro sees the template's variables as they are
when it is called.
"""

from __future__ import annotations

import operator
from collections import ChainMap

FORMAT = 1  # of the compiled form; part of the cache key


class Unsupported(Exception):
    """A construct this module does not render; the template is rendered by Jinja2 instead."""


# ---------------------------------------------------------------------------------------------------
# Compiling: Jinja2's parsed tree -> tuples

_BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "FloorDiv": "//", "Mod": "%", "Pow": "**"}
_UNARY = {"Not": "not", "Neg": "neg", "Pos": "pos"}
# Names Jinja2 gives a macro that uses them (caller, varargs, kwargs): not supported here.
_MACRO_SPECIAL = {"caller", "varargs", "kwargs"}


def compile_template(environment, source: str, name: str) -> tuple:
    """The program of template ``source``, parsed by the Jinja2 ``environment`` it is rendered with."""
    tree = environment.parse(source, name)
    return _body(tree.body)


def _body(nodes: list) -> tuple:
    return tuple(_statement(node) for node in nodes)


def _statement(node) -> tuple:
    kind = type(node).__name__
    if kind == "Output":
        parts = []
        for child in node.nodes:
            if type(child).__name__ == "TemplateData":
                parts.append(("text", child.data))
            else:
                parts.append(("out", _expr(child)))
        return ("block", tuple(parts))
    if kind == "If":
        branches = [(_expr(node.test), _body(node.body))]
        branches += [(_expr(branch.test), _body(branch.body)) for branch in node.elif_]
        return ("if", tuple(branches), _body(node.else_))
    if kind == "For":
        if node.recursive:
            raise Unsupported("a recursive for loop")
        test = None if node.test is None else _expr(node.test)
        return ("for", _target(node.target), _expr(node.iter), _body(node.body), _body(node.else_), test)
    if kind == "Assign":
        return ("set", _target(node.target), _expr(node.node))
    if kind == "Macro":
        names = tuple(arg.name for arg in node.args)
        if _MACRO_SPECIAL & _names_in(node.body):
            raise Unsupported(f"macro {node.name} uses caller, varargs or kwargs")
        defaults = tuple(_expr(default) for default in node.defaults)
        return ("macro", node.name, names, defaults, _body(node.body))
    raise Unsupported(f"{{% {kind} %}} at line {node.lineno}")


def _names_in(body: list) -> set[str]:
    from jinja2 import nodes

    return {name.name for node in body for name in node.find_all(nodes.Name)}


def _target(node) -> tuple:
    kind = type(node).__name__
    if kind == "Name":
        return ("name", node.name)
    if kind == "Tuple" and all(type(item).__name__ == "Name" for item in node.items):
        return ("names", tuple(item.name for item in node.items))
    raise Unsupported(f"assignment to {kind} at line {node.lineno}")


def _args(node) -> tuple[tuple, tuple]:
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        raise Unsupported(f"*args or **kwargs at line {node.lineno}")
    return tuple(_expr(arg) for arg in node.args), tuple((kw.key, _expr(kw.value)) for kw in node.kwargs)


def _expr(node) -> tuple:
    kind = type(node).__name__
    if kind == "Const":
        return ("const", node.value)
    if kind == "Name":
        return ("name", node.name)
    if kind in ("Tuple", "List"):
        return (kind.lower(), tuple(_expr(item) for item in node.items))
    if kind == "Dict":
        return ("dict", tuple((_expr(pair.key), _expr(pair.value)) for pair in node.items))
    if kind == "Getattr":
        return ("getattr", _expr(node.node), node.attr)
    if kind == "Getitem":
        if type(node.arg).__name__ == "Slice":
            parts = (node.arg.start, node.arg.stop, node.arg.step)
            return ("slice", _expr(node.node), tuple(None if part is None else _expr(part) for part in parts))
        return ("getitem", _expr(node.node), _expr(node.arg))
    if kind in _BINARY:
        return ("binary", _BINARY[kind], _expr(node.left), _expr(node.right))
    if kind in ("And", "Or"):
        return (kind.lower(), _expr(node.left), _expr(node.right))
    if kind in _UNARY:
        return (_UNARY[kind], _expr(node.node))
    if kind == "Concat":
        return ("concat", tuple(_expr(item) for item in node.nodes))
    if kind == "Compare":
        return ("compare", _expr(node.expr), tuple((op.op, _expr(op.expr)) for op in node.ops))
    if kind == "CondExpr":
        if node.expr2 is None:
            raise Unsupported(f"a conditional expression without else at line {node.lineno}")
        return ("cond", _expr(node.test), _expr(node.expr1), _expr(node.expr2))
    if kind == "Filter":
        if node.node is None:
            raise Unsupported(f"a filter block at line {node.lineno}")
        if node.name not in FILTERS and node.name != "q":
            raise Unsupported(f"the filter {node.name!r} at line {node.lineno}")
        if node.name == "map" and not (node.args and type(node.args[0]).__name__ == "Const" and not node.kwargs):
            raise Unsupported(f"map other than map('FILTER') at line {node.lineno}")
        args, kwargs = _args(node)
        return ("filter", node.name, _expr(node.node), args, kwargs)
    if kind == "Call":
        args, kwargs = _args(node)
        return ("call", _expr(node.node), args, kwargs)
    raise Unsupported(f"the expression {kind} at line {node.lineno}")


# ---------------------------------------------------------------------------------------------------
# Rendering


def _indent(s, width=4, first=False, blank=False) -> str:
    """Jinja2's ``indent``: lines after the first (and blank ones) left alone unless asked."""
    indention = width if isinstance(width, str) else " " * width
    lines = (s + "\n").splitlines()
    if blank:
        text = ("\n" + indention).join(lines)
    else:
        text = lines[0] + "".join("\n" + (indention + line if line else line) for line in lines[1:])
    return indention + text if first else text


def _last(value):
    return next(iter(reversed(value)))


def _replace(s, old, new, count=None) -> str:
    return str(s).replace(str(old), str(new), -1 if count is None else count)


def _join(value, d="") -> str:
    return str(d).join(map(str, value))


FILTERS = {
    "indent": _indent,
    "join": _join,
    "list": list,
    "length": len,
    "count": len,
    "replace": _replace,
    "string": str,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "trim": lambda s, chars=None: str(s).strip(chars),
    "first": lambda value: next(iter(value)),
    "last": _last,
    "map": None,  # map('FILTER', ...): handled in _filter
}

_COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_OPERATORS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
GLOBALS = {"range": range, "dict": dict}


class Loop:
    """Jinja2's ``loop`` inside a for body (the attributes the templates use)."""

    __slots__ = ("index0", "length", "_items")

    def __init__(self, items: list) -> None:
        self._items, self.length, self.index0 = items, len(items), 0

    index = property(lambda self: self.index0 + 1)
    revindex = property(lambda self: self.length - self.index0)
    revindex0 = property(lambda self: self.length - self.index0 - 1)
    first = property(lambda self: self.index0 == 0)
    last = property(lambda self: self.index0 == self.length - 1)
    depth = 1
    depth0 = 0
    previtem = property(lambda self: self._items[self.index0 - 1] if self.index0 else _missing("loop.previtem"))
    nextitem = property(lambda self: self._items[self.index0 + 1] if not self.last else _missing("loop.nextitem"))


def _missing(name: str):
    raise LookupError(f"{name} is undefined")


class Macro:
    def __init__(self, names: tuple, defaults: tuple, body: tuple, scope, filters: dict) -> None:
        self.names, self.defaults, self.body, self.scope, self.filters = names, defaults, body, scope, filters

    def __call__(self, *args, **kwargs) -> str:
        if len(args) > len(self.names) or set(kwargs) - set(self.names):
            raise TypeError("macro called with arguments it does not take")
        local = {}
        scope = ChainMap(local, self.scope)
        first_default = len(self.names) - len(self.defaults)
        for index, name in enumerate(self.names):
            if index < len(args):
                local[name] = args[index]
            elif name in kwargs:
                local[name] = kwargs[name]
            elif index >= first_default:
                local[name] = _eval(self.defaults[index - first_default], scope, self.filters)
            else:
                raise TypeError(f"macro argument {name!r} missing")
        out: list[str] = []
        _run(self.body, scope, self.filters, out)
        return "".join(out)


def run(program: tuple, values: dict, filters: dict) -> str:
    """Render ``program`` with ``values``; ``filters`` adds to (or overrides) :data:`FILTERS`.
    Raises whatever goes wrong (a name that is not defined: LookupError)."""
    out: list[str] = []
    _run(program, ChainMap(dict(values), GLOBALS), {**FILTERS, **filters}, out)
    return "".join(out)


def _assign(target: tuple, value, scope) -> None:
    if target[0] == "name":
        scope[target[1]] = value
        return
    values = tuple(value)
    if len(values) != len(target[1]):
        raise ValueError("cannot unpack")
    for name, item in zip(target[1], values):
        scope[name] = item


def _run(program: tuple, scope, filters: dict, out: list) -> None:
    for statement in program:
        kind = statement[0]
        if kind == "block":
            for part in statement[1]:
                out.append(part[1] if part[0] == "text" else str(_eval(part[1], scope, filters)))
        elif kind == "if":
            for test, body in statement[1]:
                if _eval(test, scope, filters):
                    _run(body, scope, filters, out)
                    break
            else:
                _run(statement[2], scope, filters, out)
        elif kind == "for":
            _for(statement, scope, filters, out)
        elif kind == "set":
            _assign(statement[1], _eval(statement[2], scope, filters), scope)
        elif kind == "macro":
            _kind, name, names, defaults, body = statement
            scope[name] = Macro(names, defaults, body, scope, filters)
        else:
            raise Unsupported(kind)


def _for(statement: tuple, scope, filters: dict, out: list) -> None:
    _kind, target, iterable, body, else_body, test = statement
    items = list(_eval(iterable, scope, filters))
    if test is not None:  # `for x in xs if cond`: filtered before the loop counts
        kept = []
        for item in items:
            probe = scope.new_child()
            _assign(target, item, probe)
            if _eval(test, probe, filters):
                kept.append(item)
        items = kept
    if not items:
        _run(else_body, scope, filters, out)
        return
    loop = Loop(items)
    local = scope.new_child({"loop": loop})
    for index, item in enumerate(items):
        loop.index0 = index
        _assign(target, item, local)
        _run(body, local, filters, out)


def _getattr(obj, name):
    try:
        return getattr(obj, name)
    except AttributeError:
        return obj[name]


def _getitem(obj, key):
    try:
        return obj[key]
    except (AttributeError, TypeError, LookupError):
        if isinstance(key, str):
            return getattr(obj, key)
        raise


def _filter(expr: tuple, scope, filters: dict):
    _kind, name, node, args, kwargs = expr
    value = _eval(node, scope, filters)
    args = [_eval(arg, scope, filters) for arg in args]
    kwargs = {key: _eval(arg, scope, filters) for key, arg in kwargs}
    if name == "map":
        inner = filters[args[0]]
        rest = args[1:]
        return (inner(item, *rest, **kwargs) for item in value) if value else iter(())
    return filters[name](value, *args, **kwargs)


def _eval(expr: tuple, scope, filters: dict):
    kind = expr[0]
    if kind == "const":
        return expr[1]
    if kind == "name":
        return scope[expr[1]]
    if kind == "filter":
        return _filter(expr, scope, filters)
    if kind == "concat":
        return "".join(str(_eval(item, scope, filters)) for item in expr[1])
    if kind == "getattr":
        return _getattr(_eval(expr[1], scope, filters), expr[2])
    if kind == "call":
        function = _eval(expr[1], scope, filters)
        return function(*[_eval(arg, scope, filters) for arg in expr[2]], **{k: _eval(v, scope, filters) for k, v in expr[3]})
    if kind == "compare":
        left = _eval(expr[1], scope, filters)
        for op, right_expr in expr[2]:
            right = _eval(right_expr, scope, filters)
            if not _COMPARE[op](left, right):
                return False
            left = right
        return True
    if kind == "cond":
        return _eval(expr[2] if _eval(expr[1], scope, filters) else expr[3], scope, filters)
    if kind == "and":
        return _eval(expr[1], scope, filters) and _eval(expr[2], scope, filters)
    if kind == "or":
        return _eval(expr[1], scope, filters) or _eval(expr[2], scope, filters)
    if kind == "not":
        return not _eval(expr[1], scope, filters)
    if kind == "neg":
        return -_eval(expr[1], scope, filters)
    if kind == "pos":
        return +_eval(expr[1], scope, filters)
    if kind == "binary":
        return _OPERATORS[expr[1]](_eval(expr[2], scope, filters), _eval(expr[3], scope, filters))
    if kind == "tuple":
        return tuple(_eval(item, scope, filters) for item in expr[1])
    if kind == "list":
        return [_eval(item, scope, filters) for item in expr[1]]
    if kind == "dict":
        return {_eval(key, scope, filters): _eval(value, scope, filters) for key, value in expr[1]}
    if kind == "getitem":
        return _getitem(_eval(expr[1], scope, filters), _eval(expr[2], scope, filters))
    if kind == "slice":
        bounds = [None if part is None else _eval(part, scope, filters) for part in expr[2]]
        return _eval(expr[1], scope, filters)[slice(*bounds)]
    raise Unsupported(kind)
