"""Unpack a shipped overlay into this node's cache, once. Run by job scripts that `overlay-venv wrap
--ship` writes, with the release's interpreter, on a node without overlay-venv: standard library only,
Python 3.6 or newer.

    python -E -S - CACHE KEY SHA256 SIZE BIN_DIR embedded SCRIPT
    python -E -S - CACHE KEY SHA256 SIZE BIN_DIR file CANDIDATE...

CACHE/KEY becomes the overlay. Concurrent jobs on one node take an flock on CACHE/.KEY.lock: the first
unpacks, the others wait for it and then find the entry made. The kernel drops the lock of a job that
is killed, and what it left (CACHE/.KEY.tmp-*) is removed by the next job that holds the lock. An
entry appears only complete: the pack is checked against SHA256, unpacked with tar into a temporary
directory, pointed at CACHE/KEY by the overlay's own bin/overlay-venv-relocate, and renamed into
place. Every failure is one line on stderr and exit status 1. Each unpack appends a line to
CACHE/unpacked.log: "TIME KEY unpacked by pid PID on HOST in SECONDS s".
"""

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time

PROG = "overlay-venv job"
# The line after which an embedding job script carries the pack, base64 in comment lines.
MARK = b"\n# overlay-venv pack (base64) follows\n"
CHUNK = 1 << 20
FULL = (errno.ENOSPC, errno.EDQUOT)


class Failure(Exception):
    pass


def mib(size):
    return f"{size / 1048576:.1f} MiB"


def free_space(path):
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def no_space(cache, size, free):
    return Failure(
        f"no space left in {cache} to unpack the overlay (it needs {mib(size)}, {mib(free)} was free); "
        "free some, or write the job again with `overlay-venv wrap --ship --ship-dir DIR`"
    )


def own_directory(path):
    """``path`` as a directory of ours that no one else can write: made 0700 if new, refused if it
    is a symlink, someone else's, or writable by others (they could plant an overlay in it)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)  # a --ship-dir not made yet
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise Failure(f"cannot make the cache directory {path}: {exc.strerror}") from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise Failure(
            f"{path} is not a directory of this user's that only they can write; remove it, or write the job "
            "again with `overlay-venv wrap --ship --ship-dir DIR`"
        )


def embedded_chunks(script):
    import binascii  # here: only an embedded pack needs it

    with open(script, "rb") as handle:
        data = handle.read()
    start = data.find(MARK)
    if start < 0:
        raise Failure(f"{script} carries no packed overlay (its end was cut off?)")
    # Comment lines of base64: drop the '#' and the newlines, decode a block of whole lines at a time.
    payload = data[start + len(MARK) :].translate(None, b"#\n")
    for offset in range(0, len(payload), CHUNK * 4):
        try:
            yield binascii.a2b_base64(payload[offset : offset + CHUNK * 4])
        except binascii.Error:
            raise Failure(f"the packed overlay carried in {script} is damaged") from None


def file_chunks(path):
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return
            yield chunk


def check_pack(chunks, target, digest, what):
    """Fail unless the pack is the one the job script was written with; write it to ``target`` if
    that is not None (an embedded pack, for tar to read)."""
    found = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(target, "xb")) if target else None
        for chunk in chunks:
            found.update(chunk)
            if out:
                out.write(chunk)
    if found.hexdigest() != digest:
        raise Failure(
            f"{what} is not the pack this job script was written with (sha256 {found.hexdigest()}, "
            f"expected {digest}); write the job and its pack again together with `overlay-venv wrap --ship`"
        )


def source_of(kind, names):
    """The pack's chunks, a name for messages, and its file if it has one: carried in the script, or
    the first file found."""
    if kind == "embedded":
        return embedded_chunks(names[0]), "the pack carried in " + names[0], None
    for name in names:
        if os.path.isfile(name):
            return file_chunks(name), name, name
    raise Failure(
        "the packed overlay is neither among the job's files nor at {}; transfer it with the job "
        "(HTCondor: transfer_input_files) or write the job again".format(" or ".join(names))
    )


def relocate(tmp, entry, bin_dir):
    """Point the unpacked copy at ``entry`` with the overlay's own stdlib relocator, in this process."""
    script = os.path.join(tmp, bin_dir, "overlay-venv-relocate")
    saved = sys.argv
    sys.argv = [script, "--to", entry]
    try:
        with open(script, "rb") as handle:
            code = compile(handle.read(), script, "exec")
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            exec(code, {"__name__": "__main__", "__file__": script})
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise  # the relocator said why, in one line
    finally:
        sys.argv = saved


def unpack(cache, key, digest, size, bin_dir, kind, names):
    entry = os.path.join(cache, key)
    tmp = os.path.join(cache, f".{key}.tmp-{os.getpid()}")
    decoded = tmp + ".tar.gz"
    started = time.time()
    chunks, what, pack = source_of(kind, names)
    free = free_space(cache)
    if free < size:
        raise no_space(cache, size, free)
    try:
        os.mkdir(tmp, 0o700)
        # tar reads a pack file where it is (checked first: a copy would cost as much as the check).
        check_pack(chunks, None if pack else decoded, digest, what)
        pack = os.path.abspath(pack or decoded)
        tar = ["tar", "-xzf", pack, "-C", tmp]
        # Not capture_output: the release's interpreter may be 3.6.
        result = subprocess.run(tar, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: UP022
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace")
            if "No space left" in message or "quota exceeded" in message:
                raise no_space(cache, size, free)
            lines = message.strip().splitlines() or [f"exit status {result.returncode}"]
            raise Failure(f"tar could not unpack {what}: {lines[0]}")
        if not os.path.isfile(os.path.join(tmp, "overlay-venv.json")):
            raise Failure(f"{what} holds no overlay (no overlay-venv.json at its top)")
        relocate(tmp, entry, bin_dir)
        os.rename(tmp, entry)
        with open(os.path.join(cache, "unpacked.log"), "a") as log:
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))
            log.write(f"{when} {key} unpacked by pid {os.getpid()} on {os.uname().nodename} in {time.time() - started:.3f} s\n")
    except OSError as exc:
        if exc.errno in FULL:
            raise no_space(cache, size, free) from None
        if exc.errno == errno.ENOENT and exc.filename == "tar":
            raise Failure("tar is not on this node's PATH; the job needs it to unpack the overlay") from None
        raise Failure(f"cannot unpack the overlay into {cache}: {exc}") from None
    finally:
        remove(decoded)
        remove(tmp)


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.unlink(path)


def main(argv):
    cache, key, digest, size, bin_dir, kind = argv[1:7]
    names = argv[7:]
    own_directory(cache)
    entry = os.path.join(cache, key)
    try:
        lock = os.open(os.path.join(cache, "." + key + ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno in FULL:
            raise no_space(cache, int(size), free_space(cache)) from None
        raise Failure(f"cannot make a lock in {cache}: {exc.strerror}") from None
    with os.fdopen(lock, "r+"):
        fcntl.flock(lock, fcntl.LOCK_EX)  # the lock goes with the descriptor, when this process ends at the latest
        if os.path.isfile(os.path.join(entry, "overlay-venv.json")):
            return  # another job unpacked it while this one waited
        # Left by a job killed while it held the lock: no other process writes them now.
        for name in os.listdir(cache):
            if name.startswith("." + key + ".tmp-"):
                remove(os.path.join(cache, name))
        unpack(cache, key, digest, int(size), bin_dir, kind, names)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Failure as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        sys.exit(1)
