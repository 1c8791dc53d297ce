"""Where packages come from: the index options pip and uv share, in one type for install and lock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


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

    def merged(self, other: Sources) -> Sources:
        """These options, with ``other`` (given on the command line) taking precedence."""
        return Sources(
            other.index_url or self.index_url,
            tuple(dict.fromkeys(other.extra_index_urls + self.extra_index_urls)),
            tuple(dict.fromkeys(other.find_links + self.find_links)),
            other.no_index or self.no_index,
        )
