#!/usr/bin/env python3
"""Build a local package index where holds conflict, as in issue 17 (aiobotocore pinning botocore).

The base (see :func:`add_base`) has ``corelib 1.20.0`` and ``clientlib 1.4``, which requires
``corelib==1.20``. The index has::

    corelib   1.10.0 ... 1.(20+N).0          many versions
    clientlib 1.4                             requires corelib==1.20
    tool      0.1.0 ... 0.8.0                 require corelib>=1.10,<1.21: they fit the base
    tool      1.0.0 ... 1.(N-1).0             N releases, 1.k.0 requires corelib==1.(21+k).0: none fits
    gizmo     0.9 (an sdist only)             an old release that no longer builds
    gizmo     1.0.0 ... 1.(N-1).0             as tool's: none fits, so pip backtracks down to the sdist

in three shapes, all holding the same files::

    DEST/files/      every file, with a PEP 658 ``.metadata`` file beside each wheel
    DEST/simple/     a PEP 503 index (``data-dist-info-metadata`` and ``data-core-metadata`` on each
                     wheel link), for --index-url file://DEST/simple or over http
    DEST/plain/      the same index without metadata files, as many mirrors serve one
    DEST/wheels/     a plain find-links directory (hard links, no .metadata files)

:func:`serve` serves DEST over http as a remote index would (kept-alive connections, Range requests,
a latency per request); the tests and benchmarks/bench_conflicts.py use it.

Usage:
    python scripts/make_conflict_index.py DEST [--releases 300] [--payload-kb 0]
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import os
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_base  # noqa: E402

RELEASES = 300
HELD = "1.20.0"
FITTING = [f"0.{i}.0" for i in range(1, 9)]
NEWEST_FITTING = FITTING[-1]
BROKEN_SDIST = "0.9"

# An in-tree build backend (no setuptools needed offline) that fails the way an old sdist does.
_BACKEND = """\
def _fail(*args, **kwargs):
    raise RuntimeError("gizmo 0.9 no longer builds: it needs a compiler flag removed years ago")
get_requires_for_build_wheel = prepare_metadata_for_build_wheel = build_wheel = build_sdist = _fail
"""
_PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'


def conflicting(index: int) -> str:
    """The corelib that release 1.<index>.0 of tool and gizmo pins."""
    return f"1.{21 + index}.0"


def _broken_sdist(outdir: Path) -> Path:
    path = outdir / f"gizmo-{BROKEN_SDIST}.tar.gz"
    top = f"gizmo-{BROKEN_SDIST}"
    members = {
        "pyproject.toml": _PYPROJECT,
        "backend.py": _BACKEND,
        "PKG-INFO": f"Metadata-Version: 1.1\nName: gizmo\nVersion: {BROKEN_SDIST}\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime = len(data), 1577836800
            archive.addfile(info, io.BytesIO(data))
    return path


def _metadata_of(wheel: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA")))


def _wheel(files: Path, name: str, version: str, requires: tuple[str, ...], payload_kb: int) -> Path:
    # A payload makes the wheel as big as real ones are (botocore's are ~12 MB): what pip downloads
    # whole when the index has no metadata files. Random, so zip cannot shrink it.
    modules = {f"{name}/__init__.py": f"__version__ = {version!r}\n"}
    if payload_kb:
        modules[f"{name}/_payload.py"] = f"DATA = {os.urandom(payload_kb * 512).hex()!r}\n"
    return make_base.build_wheel(files, name, version, requires=requires, modules=modules)


def build_index(dest: Path, releases: int = RELEASES, payload_kb: int = 0) -> Path:
    """Build DEST/files, DEST/simple, DEST/plain and DEST/wheels; return DEST. ``payload_kb``: the size
    of each tool and gizmo wheel."""
    files = dest / "files"
    built: dict[str, list[Path]] = {"corelib": [], "clientlib": [], "tool": [], "gizmo": []}
    for minor in range(10, 21 + releases):
        built["corelib"].append(make_base.build_wheel(files, "corelib", f"1.{minor}.0"))
    built["clientlib"].append(make_base.build_wheel(files, "clientlib", "1.4", requires=("corelib==1.20",)))
    for version in FITTING:
        built["tool"].append(_wheel(files, "tool", version, ("corelib>=1.10,<1.21",), payload_kb))
    built["gizmo"].append(_broken_sdist(files))
    for index in range(releases):
        for name in ("tool", "gizmo"):
            built[name].append(_wheel(files, name, f"1.{index}.0", (f"corelib=={conflicting(index)}",), payload_kb))
    wheels = dest / "wheels"
    wheels.mkdir(parents=True)
    for name, paths in built.items():
        for path in paths:
            os.link(path, wheels / path.name)
        _pages(dest / "simple", name, paths, metadata=True)
        _pages(dest / "plain", name, paths, metadata=False)
    return dest


def _pages(simple: Path, name: str, paths: list[Path], metadata: bool) -> None:
    """SIMPLE/NAME/index.html linking ``paths``, with metadata files (written beside) or without."""
    links = []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        attrs = ""
        if path.suffix == ".whl" and metadata:
            text = _metadata_of(path)
            Path(f"{path}.metadata").write_bytes(text)
            flag = f"sha256={hashlib.sha256(text).hexdigest()}"
            # Both spellings, as PyPI serves them: PEP 714's name and PEP 658's older one.
            attrs = f' data-core-metadata="{flag}" data-dist-info-metadata="{flag}"'
        href = html.escape(f"../../files/{path.name}#sha256={digest}")
        links.append(f'<a href="{href}"{attrs}>{html.escape(path.name)}</a><br/>')
    page = simple / name
    page.mkdir(parents=True)
    body = "\n".join(links)
    (page / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n")


def serve(directory: Path, latency: float = 0.0):
    """Serve ``directory`` over http on localhost, in a thread, as a remote index would: HTTP/1.1 with
    kept-alive connections, Range requests answered (PyPI's CDN answers them), and ``latency``
    seconds before each reply. Returns (server, base URL); ``server.shutdown()`` stops it."""
    import http.server
    import socket
    import threading
    import time

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
            # body until the client's delayed ACK, 40 ms a request on a kept-alive connection.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            if latency:
                time.sleep(latency)
            wanted = self.headers.get("Range", "")
            path = Path(self.translate_path(self.path))
            if not wanted.startswith("bytes=") or not path.is_file():
                return super().do_GET()
            data = path.read_bytes()
            first, _, last = wanted[len("bytes=") :].partition("-")
            if first:
                start, end = int(first), min(len(data), int(last or len(data) - 1) + 1)
            else:  # bytes=-N: the last N bytes
                start, end = len(data) - int(last), len(data)
            start = max(0, start)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.send_header("Content-Length", str(end - start))
            self.end_headers()
            self.wfile.write(data[start:end])

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            # A client that goes away mid-reply (a dry run stopped once the pre-flight added its bound)
            # is what clients do; anything else is reported as the standard library does.
            if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def add_base(site_packages: Path, scratch: Path) -> None:
    """Install the base's side into a release's site-packages: corelib 1.20.0, and clientlib 1.4 that pins it."""
    make_base.install_wheel(make_base.build_wheel(scratch, "corelib", HELD), site_packages)
    make_base.install_wheel(make_base.build_wheel(scratch, "clientlib", "1.4", requires=("corelib==1.20",)), site_packages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="directory to create (must not exist)")
    parser.add_argument("--releases", type=int, default=RELEASES, help=f"conflicting releases of tool and gizmo ({RELEASES})")
    parser.add_argument("--payload-kb", type=int, default=0, help="size of each tool and gizmo wheel, in KB (0: tiny)")
    args = parser.parse_args(argv)
    if args.dest.exists():
        parser.error(f"{args.dest} already exists")
    print(build_index(args.dest.resolve(), args.releases, args.payload_kb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
