"""The header block of core metadata (a wheel's METADATA, an sdist's or egg's PKG-INFO) as a mapping
of lower-cased names to their values, in order.

email.parser reads the same format, but importing it is ~7 ms of an install (measured with
``python -c`` and ``os._exit`` beside the install's other imports) and parsing the body a
description is not needed for. Both readers of metadata use this: layers.scan for the installed
distributions, preflight for the candidates on an index.
"""

from __future__ import annotations


def parse_headers(text: str) -> dict[str, list[str]]:
    """Names (lower-cased) to every value they have, up to the first empty line (the body after it
    is not headers). A line starting with a blank or a tab continues the value before it, joined
    with one space, as a folded header reads; a line without a colon is not a header."""
    headers: dict[str, list[str]] = {}
    last = None
    for line in text.splitlines():
        if line == "":
            break
        if line[:1] in (" ", "\t"):
            if last is not None:
                headers[last][-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip().lower()
            headers.setdefault(last, []).append(value.strip())
    return headers
