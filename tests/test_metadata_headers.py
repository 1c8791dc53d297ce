"""metadata_headers.parse_headers reads core metadata's header block as email.parser does (which the
pre-flight used before; its import is ~7 ms of an install), for what overlay-venv reads from it."""

from __future__ import annotations

from email.parser import HeaderParser

from hypothesis import given
from hypothesis import strategies as st

from overlay_venv.metadata_headers import parse_headers
from overlay_venv.preflight import parse_metadata

SAMPLE = """\
Metadata-Version: 2.1
Name: tool
Version: 2.0
Requires-Python: >=3.9
Requires-Dist: corelib==1.20.106
Requires-Dist: extra-thing>=1; extra == "full"
Requires-Dist: folded-one
 >=2.0
Description-Content-Type: text/markdown

# tool

Requires-Dist: not-a-header (the body)
"""


def as_email(text: str, name: str) -> list[str]:
    return [" ".join(value.split()) for value in HeaderParser().parsestr(text).get_all(name) or ()]


def test_a_wheels_metadata_reads_as_email_reads_it():
    headers = parse_headers(SAMPLE)
    for name in ("Name", "Version", "Requires-Python", "Requires-Dist", "Description-Content-Type"):
        assert headers.get(name.lower(), []) == as_email(SAMPLE, name), name
    assert parse_metadata(SAMPLE).requires == ("corelib==1.20.106", 'extra-thing>=1; extra == "full"', "folded-one >=2.0")
    assert parse_metadata(SAMPLE).requires_python == ">=3.9"
    assert parse_metadata("Name: bare\n").requires_python is None


def test_crlf_line_ends_and_no_body():
    text = "Name: tool\r\nRequires-Dist: a\r\nRequires-Dist: b\r\n"
    assert parse_headers(text) == {"name": ["tool"], "requires-dist": ["a", "b"]}


NAMES = st.sampled_from(["Name", "Version", "Requires-Dist", "Requires-Python", "Provides-Extra", "Summary"])
VALUE = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=20)


@given(
    st.lists(st.tuples(NAMES, st.lists(VALUE, min_size=1, max_size=3)), max_size=12),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
def test_any_header_block_reads_as_email_reads_it(headers, body):
    """Headers with values folded over lines, then a body."""
    text = "".join(f"{name}: " + "\n ".join(parts) + "\n" for name, parts in headers) + "\n" + body + "\n"
    parsed = parse_headers(text)
    for name in {name for name, _ in headers}:
        assert parsed[name.lower()] == as_email(text, name), text
