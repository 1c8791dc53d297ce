"""A small reader of the places pip takes packages from, for the pre-flight (:mod:`overlay_venv.preflight`).

It reads what pip would read, no more: the simple API of each index (PEP 503 HTML or PEP 691 JSON,
over ``file://`` and ``http(s)://``), each find-links location (a directory, or a page of links), and
a release's core metadata where that is cheap: the PEP 658/714 ``.metadata`` file beside a file the
index marks so, the METADATA inside a wheel on the local disk, or that of a remote wheel read by HTTP
range requests (the zip's directory, then the one member: a few KB, as pip's fast-deps reads them).
An sdist, or a remote wheel whose server ignores ranges, is "not known": the pre-flight then leaves
that release to pip. Remote reads go 8 ahead of the walk in parallel, each thread on its own
kept-alive connection (:meth:`IndexClient.reader`).

Which places: the index options given, together with pip's own configuration (``PIP_*`` variables and
pip.conf files, see :func:`configured_sources`), because pip reads those too. More places than pip
uses would only stop the walk sooner; fewer could rule out a release pip finds elsewhere, so any place
that cannot be read makes the whole pre-flight give up (:class:`Unreadable`) and pip works alone.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from .preflight import File, Metadata, parse_filename, parse_html, parse_json, parse_metadata
from .sources import Sources

if TYPE_CHECKING:  # imported where the pool is made: concurrent.futures loads logging (~5 ms), which a
    from concurrent.futures import Future, ThreadPoolExecutor  # local index never needs

PYPI = "https://pypi.org/simple/"
AHEAD = 8  # remote files read in parallel ahead of the walk
RANGE_BLOCK = 16384  # bytes a range read asks for at least: a small wheel's directory and METADATA in one or two
RANGE_READS = 6  # range reads one remote wheel may take, beyond the first
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


class Unreadable(Exception):
    """A place pip would look cannot be read: the pre-flight cannot know every release."""


def configured_sources(environ: Mapping[str, str], prefix: Optional[str] = None) -> Sources:
    """The index options pip's configuration gives (files, then ``PIP_*`` variables), read as the uv
    backend reads them for uv (:mod:`overlay_venv.backends.pip_settings`)."""
    from .backends.pip_settings import UnreadableConfig, pip_values, sources_of

    try:
        return sources_of(pip_values(environ, prefix))
    except UnreadableConfig as exc:
        raise Unreadable(f"pip's configuration file {exc}") from None


def all_sources(given: Sources, environ: Mapping[str, str], prefix: Optional[str]) -> Sources:
    """Every place pip may look: the options given and pip's configuration, together."""
    configured = configured_sources(environ, prefix)
    index_urls = tuple(dict.fromkeys(u for u in (given.index_url, configured.index_url) if u))
    no_index = given.no_index or configured.no_index
    return Sources(
        None,
        tuple(dict.fromkeys(index_urls + given.extra_index_urls + configured.extra_index_urls)) or (() if no_index else (PYPI,)),
        tuple(dict.fromkeys(given.find_links + configured.find_links)),
        no_index,
    )


def _credentials(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its user:password, and the header that sends them (urllib would not)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, host = parts.netloc.rsplit("@", 1)
    token = base64.b64encode(unquote(os.path.expandvars(userinfo)).encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


class IndexClient:
    """Reads project pages and metadata from :class:`~overlay_venv.sources.Sources`; every read is
    bounded by ``timeout`` seconds."""

    def __init__(self, sources: Sources, timeout: float = 10.0) -> None:
        self.sources = sources
        self.timeout = timeout
        self._local = threading.local()  # each thread its own kept-alive connections
        self._opened: list = []
        self._pool: Optional[ThreadPoolExecutor] = None
        self._ahead: dict[str, Future] = {}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for connection in self._opened:
            connection.close()

    @property
    def _connections(self) -> dict:
        if not hasattr(self._local, "connections"):
            self._local.connections = {}
        return self._local.connections

    # -- reading -------------------------------------------------------------------------------------

    def _read(self, url: str, accept: Optional[str] = None) -> tuple[Optional[bytes], str, str]:
        """(content, content type, final URL); content None for "not there" (404, a missing file)."""
        if "://" not in url or url.startswith("file:"):
            path = unquote(urlsplit(url).path) if url.startswith("file:") else url
            try:
                return Path(path).read_bytes(), "text/html", url
            except FileNotFoundError:
                return None, "", url
            except OSError as exc:
                raise Unreadable(f"{path}: {exc.strerror or exc}") from None
        plain, headers = _credentials(url)
        if accept:
            headers["Accept"] = accept
        return self._get(plain, headers, redirects=5)

    def _get(self, url: str, headers: dict[str, str], redirects: int) -> tuple[Optional[bytes], str, str]:
        import urllib.request

        if urllib.request.getproxies() and not urllib.request.proxy_bypass(urlsplit(url).hostname or ""):
            return self._get_by_urllib(url, headers)
        status, response_headers, body = self._request(url, headers)
        location = response_headers.get("location")
        if status in (301, 302, 303, 307, 308) and redirects and location:
            from urllib.parse import urljoin

            return self._get(urljoin(url, location), headers, redirects - 1)
        if status == 404:
            return None, "", url
        if status != 200:
            raise Unreadable(f"{url}: HTTP {status}")
        return body, response_headers.get("content-type", ""), url

    def _request(self, url: str, headers: dict[str, str], ranged: bool = False) -> tuple[int, dict[str, str], bytes]:
        """One GET on this thread's kept-alive connection to the host: (status, headers in lower case,
        body). Kept alive because the walk reads hundreds of small files, and a TLS handshake for
        each would cost more than the reading. ``ranged``: a reply that is not 206 is not read (a
        server ignoring Range would send the whole wheel)."""
        import http.client

        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more, anew
            connection = self._connections.get(key)
            if connection is None:
                kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                connection = self._connections[key] = kind(parts.netloc, timeout=self.timeout)
                self._opened.append(connection)
            try:
                connection.request("GET", urlunsplit(("", "", parts.path or "/", parts.query, "")), headers=headers)
                response = connection.getresponse()
                found = {name.lower(): value for name, value in response.getheaders()}
                if ranged and response.status != 206:
                    connection.close()
                    del self._connections[key]
                    return response.status, found, b""
                body = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                del self._connections[key]
                if attempt == 2:
                    raise Unreadable(f"{url}: {exc}") from None
        if found.get("connection", "").lower() == "close" or response.version == 10:
            connection.close()
            del self._connections[key]
        return response.status, found, body

    def _remote_wheel_metadata(self, url: str) -> Optional[Metadata]:
        """A remote wheel's METADATA read with HTTP range requests (the zip's directory at its end,
        then the one member), as pip's fast-deps does: a few KB instead of the wheel. None when the
        server does not answer ranges."""
        import urllib.request

        plain, headers = _credentials(url)
        if urllib.request.getproxies() and not urllib.request.proxy_bypass(urlsplit(url).hostname or ""):
            return None  # through a proxy only urllib reads, whole files: left to pip
        status, found, tail = self._request(plain, {**headers, "Range": f"bytes=-{RANGE_BLOCK}"}, ranged=True)
        total = found.get("content-range", "").rpartition("/")[2]
        if status != 206 or not total.isdigit():
            return None
        reads = [0]

        def fetch(start: int, end: int) -> bytes:
            reads[0] += 1
            if reads[0] > RANGE_READS:
                raise Unreadable(f"{plain}: more than {RANGE_READS} range reads")
            status, _, body = self._request(plain, {**headers, "Range": f"bytes={start}-{end - 1}"}, ranged=True)
            if status != 206:
                raise Unreadable(f"{plain}: HTTP {status} to a range request")
            return body

        return _wheel_metadata(_RangedFile(fetch, int(total), tail))

    def _get_by_urllib(self, url: str, headers: dict[str, str]) -> tuple[Optional[bytes], str, str]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout) as response:
                return response.read(), response.headers.get("Content-Type", ""), response.geturl()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None, "", url
            raise Unreadable(f"{url}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, TLS, a malformed URL
            raise Unreadable(f"{url}: {exc}") from None

    def _page(self, url: str) -> list[File]:
        local = "://" not in url or url.startswith("file:")
        if local:
            path = unquote(urlsplit(url).path) if url.startswith("file:") else url
            if os.path.isdir(path):
                if url.startswith("file:") and not path.endswith("/"):
                    url += "/"
                html = os.path.join(path, "index.html")
                if not os.path.isfile(html):
                    return []
                url = url.rstrip("/") + "/index.html" if url.startswith("file:") else html
        content, kind, final = self._read(url, ACCEPT)
        if content is None:
            return []
        text = content.decode("utf-8", errors="replace")
        return parse_json(text, final) if "vnd.pypi.simple.v1+json" in kind else parse_html(text, final)

    def files(self, name: str) -> list[File]:
        """Every file of project ``name`` (canonical) in every place. Raises :class:`Unreadable`."""
        found: list[File] = []
        for index in self.sources.extra_index_urls:
            found += self._page(index.rstrip("/") + f"/{name}/")
        for place in self.sources.find_links:
            found += [file for file in self._links(place) if file.name == name]
        return found

    def _links(self, place: str) -> list[File]:
        path = unquote(urlsplit(place).path) if place.startswith("file:") else place
        if "://" in place and not place.startswith("file:"):
            return self._page(place)
        if os.path.isdir(path):
            try:
                entries = sorted(os.listdir(path))
            except OSError as exc:
                raise Unreadable(f"{path}: {exc.strerror or exc}") from None
            return [f for f in (parse_filename(entry, os.path.join(path, entry)) for entry in entries) if f is not None]
        if os.path.isfile(path):
            return self._page(path)
        return []  # pip only warns about a find-links location that is not there

    def reader(self, order: Sequence[File]) -> Callable[[File], Optional[Metadata]]:
        """:meth:`metadata` for a walk that reads ``order`` front to back: remote files are read
        ``AHEAD`` at a time, in parallel, each thread on its own kept-alive connection (a remote
        index's latency, ~50 ms a file, is most of the cost)."""
        position = {file.url: i for i, file in enumerate(order)}

        def fetch(file: File) -> Optional[Metadata]:
            at = position.get(file.url)
            if at is None or not _remote(file):
                return self.metadata(file)
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(AHEAD, thread_name_prefix="overlay-venv-index")
            for ahead in order[at : at + 2 * AHEAD]:
                if ahead.url not in self._ahead and _remote(ahead):
                    self._ahead[ahead.url] = self._pool.submit(self.metadata, ahead)
            return self._ahead[file.url].result()

        return fetch

    def metadata(self, file: File) -> Optional[Metadata]:
        """The core metadata of ``file`` when cheap (see the module docstring), else None."""
        try:
            if file.metadata_url:
                content, _, _ = self._read(file.metadata_url)
                if content is not None:
                    return parse_metadata(content.decode("utf-8", errors="replace"))
            if file.kind == "wheel" and ("://" not in file.url or file.url.startswith("file:")):
                return _wheel_metadata(unquote(urlsplit(file.url).path) if file.url.startswith("file:") else file.url)
            if file.kind == "wheel" and file.url.startswith(("http://", "https://")):
                return self._remote_wheel_metadata(file.url)
        except (Unreadable, OSError, zipfile.BadZipFile, UnicodeError):
            return None
        return None


def _remote(file: File) -> bool:
    return (file.metadata_url or file.url).startswith(("http://", "https://"))


def _wheel_metadata(path) -> Optional[Metadata]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            return None
        return parse_metadata(archive.read(names[0]).decode("utf-8", errors="replace"))


class _RangedFile(io.RawIOBase):
    """A remote file, read through ``fetch(start, end)`` in blocks as zipfile seeks in it."""

    def __init__(self, fetch, size: int, tail: bytes) -> None:
        super().__init__()
        self._fetch, self._size, self._pos = fetch, size, 0
        self._blocks: list[tuple[int, bytes]] = [(size - len(tail), tail)]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = max(0, {0: offset, 1: self._pos + offset, 2: self._size + offset}[whence])
        return self._pos

    def readinto(self, buffer) -> int:
        end = min(self._size, self._pos + len(buffer))
        if end <= self._pos:
            return 0
        data = self._range(self._pos, end)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _range(self, start: int, end: int) -> bytes:
        for at, block in self._blocks:
            if at <= start and end <= at + len(block):
                return block[start - at : end - at]
        stop = min(self._size, max(end, start + RANGE_BLOCK))
        block = self._fetch(start, stop)
        self._blocks.append((start, block))
        return block[: end - start]
