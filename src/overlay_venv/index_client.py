"""A small reader of the places pip takes packages from, for the pre-flight (:mod:`overlay_venv.preflight`).

It reads what pip would read, no more: the simple API of each index (PEP 503 HTML or PEP 691 JSON,
over ``file://`` and ``http(s)://``), each find-links location (a directory, or a page of links), and
a release's core metadata where that is cheap: the PEP 658/714 ``.metadata`` file beside a file the
index marks so, or the METADATA inside a wheel on the local disk. A remote wheel without a metadata
file, or an sdist, is "not known": the pre-flight then leaves that release to pip.

Which places: the index options given, together with pip's own configuration (``PIP_*`` variables and
pip.conf files, see :func:`configured_sources`), because pip reads those too. More places than pip
uses would only stop the walk sooner; fewer could rule out a release pip finds elsewhere, so any place
that cannot be read makes the whole pre-flight give up (:class:`Unreadable`) and pip works alone.
"""

from __future__ import annotations

import base64
import configparser
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from .preflight import File, Metadata, parse_filename, parse_html, parse_json, parse_metadata
from .sources import Sources

PYPI = "https://pypi.org/simple/"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


class Unreadable(Exception):
    """A place pip would look cannot be read: the pre-flight cannot know every release."""


def _split(value: str) -> list[str]:
    return value.split()


def _true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def config_files(environ: Mapping[str, str], prefix: Optional[str]) -> list[str]:
    """pip's configuration files, in the order pip applies them (later wins)."""
    given = environ.get("PIP_CONFIG_FILE")
    if given == os.devnull:
        return []  # pip's documented way to load none at all
    home = environ.get("HOME", os.path.expanduser("~"))
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs if d] + ["/etc/pip.conf"]
    files += [os.path.join(home, ".pip", "pip.conf")]
    files += [os.path.join(environ.get("XDG_CONFIG_HOME", os.path.join(home, ".config")), "pip", "pip.conf")]
    if prefix:
        files.append(os.path.join(prefix, "pip.conf"))
    if given:
        files.append(given)
    return files


def configured_sources(environ: Mapping[str, str], prefix: Optional[str] = None) -> Sources:
    """The index options pip's configuration gives (files, then ``PIP_*`` variables): index-url,
    extra-index-url, find-links and no-index from the [global] and [install] sections."""
    values: dict[str, str] = {}
    for path in config_files(environ, prefix):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                values.update(parser.items(section))
    for key in ("index-url", "extra-index-url", "find-links", "no-index"):
        variable = "PIP_" + key.upper().replace("-", "_")
        if variable in environ:
            values[key] = environ[variable]
    return Sources(
        values.get("index-url") or None,
        tuple(_split(values.get("extra-index-url", ""))),
        tuple(_split(values.get("find-links", ""))),
        _true(values.get("no-index", "")),
    )


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
        self._connections: dict = {}

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

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
        # One kept-alive connection per host, reads one after another: the walk reads hundreds of small
        # metadata files, and a new TLS handshake for each would cost more than the reading. (Threads
        # were tried: on a local server each of several requests in flight waited ~40 ms, slower.)
        import http.client
        import urllib.request

        parts = urlsplit(url)
        if urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or ""):
            return self._get_by_urllib(url, headers)
        key = (parts.scheme, parts.netloc)
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more, anew
            connection = self._connections.get(key)
            if connection is None:
                kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                connection = self._connections[key] = kind(parts.netloc, timeout=self.timeout)
            try:
                connection.request("GET", urlunsplit(("", "", parts.path or "/", parts.query, "")), headers=headers)
                response = connection.getresponse()
                body = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                del self._connections[key]
                if attempt == 2:
                    raise Unreadable(f"{url}: {exc}") from None
        if response.getheader("Connection", "").lower() == "close" or response.version == 10:
            connection.close()
            del self._connections[key]
        if response.status in (301, 302, 303, 307, 308) and redirects and response.getheader("Location"):
            from urllib.parse import urljoin

            return self._get(urljoin(url, response.getheader("Location")), headers, redirects - 1)
        if response.status == 404:
            return None, "", url
        if response.status != 200:
            raise Unreadable(f"{url}: HTTP {response.status}")
        return body, response.getheader("Content-Type", ""), url

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

    def metadata(self, file: File) -> Optional[Metadata]:
        """The core metadata of ``file`` when cheap (see the module docstring), else None."""
        try:
            if file.metadata_url:
                content, _, _ = self._read(file.metadata_url)
                if content is not None:
                    return parse_metadata(content.decode("utf-8", errors="replace"))
            if file.kind == "wheel" and "://" not in file.url:
                return _wheel_metadata(file.url)
        except (Unreadable, OSError, zipfile.BadZipFile, UnicodeError):
            return None
        return None


def _wheel_metadata(path: str) -> Optional[Metadata]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            return None
        return parse_metadata(archive.read(names[0]).decode("utf-8", errors="replace"))
