"""uv's account of a failed resolution, read into the :class:`~overlay_venv.holds.Conflict` that pip's
gives, so ``install`` explains a refusal in terms of holds whichever tool resolved.

uv words a conflict as a derivation (PubGrub's), e.g.::

    error: No solution found when resolving dependencies
      cause: Because tool>=2.0 depends on corelib>=1.43 and corelib==1.20.0, we can conclude that
             tool>=2.0 cannot be used.
             And because you require tool==2.0, we can conclude that your requirements are unsatisfiable.

Three phrases carry the facts: ``X<range> depends on R`` (``all versions of X depend on R``) is a
package's requirement, ``you require R`` the user's, and a bare ``and R,`` after either a constraint
(the holds are handed to uv as constraints). A version range stands for its first version (pip names
each version; uv the range that starts there). The wording is uv's, not an interface: when none of it
is found, :func:`parse_uv_conflict` returns None and ``install`` shows uv's own words.
"""

from __future__ import annotations

import re

NO_SOLUTION = "No solution found when resolving dependencies"

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?"
_RANGE = r"(?:[<>=!~]=?[^\s,]*(?:,[<>=!~]=?[^\s,]*)*)"
_REQ = rf"{_NAME}{_RANGE}?"
_DEPENDS = re.compile(rf"(?:all versions of (?P<all>{_NAME})|(?P<who>{_NAME})(?P<range>{_RANGE})?) depends? on (?P<req>{_REQ})")
_REQUIRE = re.compile(rf"you require (?P<req>{_REQ})")
# "... depends on R and R2," / "you require R and R2,": R2 a constraint, not a phrase of its own.
_AND_BARE = re.compile(rf"(?:depends? on|you require) {_REQ} and (?P<req>{_NAME}{_RANGE})(?=[,.]|\s*$)", re.M)
_VERSION = re.compile(r"\d[0-9A-Za-z.+!]*")
_PINNED = re.compile(r"^[^<>=!~]+==(?P<version>[^,*\s]+)$")


def failure_block(output: str) -> str:
    """uv's error, from its ``error:`` line to the end ("" when uv printed none)."""
    lines = output.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    return "".join(lines[start:]) if start is not None else ""


def _base(name: str) -> str:
    return name.split("[", 1)[0]


def parse_uv_conflict(output: str):
    """The conflict uv reported in ``output`` as a ``holds.Conflict``, or None when uv failed some
    other way (or worded it in a way not read here)."""
    from ..holds import Conflict, Demand, _name_of

    if NO_SOLUTION not in output:
        return None
    # One logical text: uv wraps its derivation over indented lines.
    text = " ".join(line.strip() for line in output[output.index(NO_SOLUTION) :].splitlines())
    demands: list = []
    requested: list[str] = []

    def add(demand) -> None:
        if demand not in demands:
            demands.append(demand)

    for match in _DEPENDS.finditer(text):
        who, req = _base(match["all"] or match["who"]), match["req"].rstrip(".")
        found = _VERSION.search(match["range"] or "") if match["who"] else None
        version = found.group(0).rstrip(".") if found else "(every version)"
        add(Demand(who, version, req, _name_of(req)))
    for match in _REQUIRE.finditer(text):
        req = match["req"].rstrip(".")
        add(Demand("", "", req, _name_of(req)))
        if req not in requested:
            requested.append(req)
    for match in _AND_BARE.finditer(text):
        req = match["req"].rstrip(".")
        add(Demand("", "", req, _name_of(req), constraint=True))
    # "all versions of tool" when only tool 2.0 exists and the user asked for tool==2.0: that version.
    pinned = {}
    for demand in demands:
        found = None if demand.who else _PINNED.search(demand.requirement)
        if found:
            pinned[demand.name] = found["version"]
    for i, demand in enumerate(demands):
        if demand.version == "(every version)" and _name_of(demand.who) in pinned:
            demands[i] = Demand(demand.who, pinned[_name_of(demand.who)], demand.requirement, demand.name)
    return Conflict(requested, demands) if demands else None
