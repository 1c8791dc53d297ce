"""Where packages come from: the index options pip and uv share, in one type for install and lock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# scheme://userinfo@ : the userinfo runs to the last "@" before the host's end ("/", "?", "#" or a space).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#\s]*)@")
# What PEP 610 lets a recorded URL keep: ${VAR} references (no secret in them), and git's ssh user.
_NOT_SECRET = re.compile(r"(\$\{[A-Za-z_][A-Za-z0-9_]*\})?(:\$\{[A-Za-z_][A-Za-z0-9_]*\})?|git")


def redact_url(text: str) -> str:
    """``text`` with the credentials taken out of every URL in it: ``scheme://user:password@host`` and
    ``scheme://token@host`` become ``scheme://host``. Kept, as pip keeps them in direct_url.json
    (PEP 610): ``${VAR}`` references, expanded only where the URL is used, and ``git@`` (ssh's user
    name, not a secret). Works on any text: a URL, or a request such as ``name @ URL``."""

    def replace(match: re.Match) -> str:
        userinfo = match.group(2)
        return match.group(0) if _NOT_SECRET.fullmatch(userinfo) and userinfo else match.group(1)

    return _USERINFO.sub(replace, text)


@dataclass(frozen=True)
class Sources:
    """Index options: the ones pip and uv spell the same, recorded in a lock as where its artifacts came
    from and given again to install from there."""

    index_url: Optional[str] = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def pip_args(self) -> list[str]:
        args = ["--index-url", self.index_url] if self.index_url else []
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for place in self.find_links:
            args += ["--find-links", place]
        return args + ["--no-index"] * self.no_index

    def redacted(self) -> Sources:
        """The same options without credentials in their URLs (see :func:`redact_url`): what a lock
        may carry."""
        return Sources(
            redact_url(self.index_url) if self.index_url else self.index_url,
            tuple(redact_url(url) for url in self.extra_index_urls),
            tuple(redact_url(place) for place in self.find_links),
            self.no_index,
        )

    def merged(self, other: Sources) -> Sources:
        """These options, with ``other`` (given on the command line) taking precedence."""
        return Sources(
            other.index_url or self.index_url,
            tuple(dict.fromkeys(other.extra_index_urls + self.extra_index_urls)),
            tuple(dict.fromkeys(other.find_links + self.find_links)),
            other.no_index or self.no_index,
        )
