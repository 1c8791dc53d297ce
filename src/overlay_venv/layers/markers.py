"""Environment markers of the common shapes, evaluated without importing ``packaging.markers``.

``check`` evaluates the markers of every Requires-Dist line of a release. ``packaging.markers`` costs
~12 ms to import (its tokenizer compiles its regular expressions at import), more than evaluating all
the markers of 1000 distributions. Nearly every marker is ``extra == "name"``, a ``python_version``
bound, a platform test, or those joined by ``and``/``or`` with parentheses: :func:`simple_marker`
parses exactly those and evaluates them as packaging does. Anything else (``in``, a quoted value on
the left, other variables, a value that could be read as a version where packaging's releases
disagree on whether to) is not parsed here, and goes to packaging's ``Marker``. ``str()`` and an
evaluation against an environment that lacks a variable hand over to packaging too, so they are
packaging's own answers. tests/test_layers.py holds the evaluations equal to packaging's on generated
markers and environments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional

from .model import canonical_name

# Compared as versions (packaging: a Specifier built of the operator and the value).
VERSION_VARIABLES = frozenset({"python_version", "python_full_version"})
# Compared as strings, with == and != only.
STRING_VARIABLES = frozenset(
    {"sys_platform", "platform_system", "os_name", "implementation_name", "platform_python_implementation", "platform_machine"}
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<paren>[()])
      | (?P<word>and|or)(?=[\s()]|$)
      | (?P<var>[a-z_]+)\s*(?P<op>==|!=|<=|>=|<|>|~=)\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')
    )""",
    re.VERBOSE,
)

# A parsed marker: ("cmp", variable, operator, value) | ("and" | "or", [children]).
Node = tuple


def _tokens(text: str) -> Optional[list[tuple[str, Any]]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].isspace():
            break
        match = _TOKEN.match(text, position)
        if match is None:
            return None
        position = match.end()
        if match["paren"]:
            tokens.append((match["paren"], None))
        elif match["word"]:
            tokens.append((match["word"], None))
        else:
            value = match["dq"] if match["dq"] is not None else match["sq"]
            tokens.append(("cmp", (match["var"], match["op"], value)))
    return tokens


def _parse(tokens: list, position: int, depth: int) -> tuple[Optional[Node], int]:
    """expr := term ("or" term)*; term := factor ("and" factor)*; factor := "(" expr ")" | comparison."""
    if depth > 20:
        return None, position
    groups: list[list[Node]] = [[]]
    expect_operand = True
    while position < len(tokens):
        kind, value = tokens[position]
        if expect_operand:
            if kind == "cmp":
                groups[-1].append(("cmp", *value))
                position += 1
            elif kind == "(":
                inner, position = _parse(tokens, position + 1, depth + 1)
                if inner is None or position >= len(tokens) or tokens[position][0] != ")":
                    return None, position
                groups[-1].append(inner)
                position += 1
            else:
                return None, position
            expect_operand = False
        elif kind in ("and", "or"):
            if kind == "or":
                groups.append([])
            position += 1
            expect_operand = True
        else:  # ")" ends this group; the caller checks it
            break
    if expect_operand:
        return None, position
    return ("or", [("and", group) for group in groups]), position


def _is_specifier(text: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, Specifier

    try:
        Specifier(text)
    except InvalidSpecifier:
        return False
    return True


def _supported(node: Node) -> bool:
    if node[0] != "cmp":
        return all(_supported(child) for child in node[1])
    _, variable, op, value = node
    if variable == "extra" or variable in STRING_VARIABLES:
        # A value that makes a valid specifier is compared as a version by some packaging releases.
        return op in ("==", "!=") and not _is_specifier(op + value)
    return variable in VERSION_VARIABLES and _is_specifier(op + value)


class SimpleMarker:
    """A marker this module evaluates; ``str()`` and what it cannot evaluate go to packaging."""

    __slots__ = ("text", "_tree", "_packaging")

    def __init__(self, text: str, tree: Node) -> None:
        self.text = text
        self._tree = tree
        self._packaging = None

    def packaging(self):
        if self._packaging is None:
            from packaging.markers import Marker

            self._packaging = Marker(self.text)
        return self._packaging

    def __str__(self) -> str:
        return str(self.packaging())

    def __repr__(self) -> str:
        return f"<SimpleMarker({self.text!r})>"

    def evaluate(self, environment: Optional[Mapping[str, str]] = None) -> bool:
        if environment is None:
            return self.packaging().evaluate()
        verdict = _evaluate(self._tree, environment)
        return self.packaging().evaluate(environment) if verdict is None else verdict


def _evaluate(node: Node, environment: Mapping[str, str]) -> Optional[bool]:
    """True/False as packaging says, None when an environment value is missing or not what packaging
    treats alike in all its releases (a python_full_version that is no PEP 440 version)."""
    kind = node[0]
    if kind == "or" or kind == "and":
        results = [_evaluate(child, environment) for child in node[1]]
        if None in results:
            return None
        return any(results) if kind == "or" else all(results)
    _, variable, op, value = node
    if variable == "extra":
        extra = environment.get("extra") or ""
        if not isinstance(extra, str):  # a set of extras (packaging 26.4): packaging's own rules
            return None
        return (canonical_name(extra) == canonical_name(value)) == (op == "==")
    lhs = environment.get(variable)
    if not isinstance(lhs, str):
        return None
    if variable in STRING_VARIABLES:
        return (lhs == value) == (op == "==")
    from packaging.specifiers import Specifier
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(lhs)
    except InvalidVersion:
        return None
    return Specifier(op + value).contains(version, prereleases=True)


def simple_marker(text: str) -> Optional[SimpleMarker]:
    """The marker ``text`` if it is of the shapes this module evaluates, else None."""
    tokens = _tokens(text)
    if not tokens:
        return None
    tree, position = _parse(tokens, 0, 0)
    if tree is None or position != len(tokens) or not _supported(tree):
        return None
    return SimpleMarker(text, tree)
