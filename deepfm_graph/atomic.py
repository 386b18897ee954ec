"""Atomic writes of files and directories: an interrupted write leaves the old one or the new one.

Everything is written beside its target, fsynced, then renamed over it (``os.replace``), so a
crash or a kill never leaves half a file where a reader looks.
"""
import os
import shutil
import tempfile
from pathlib import Path


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write, binary=False):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_directory_atomically(target, write, marker):
    """Fill a fresh directory with ``write(tmp_dir)`` and move it to ``target``.

    An existing ``target`` is replaced only when it is empty or holds ``marker`` (one of
    our saves), so a mistyped path never removes unrelated files.
    """
    target = Path(target)
    if target.exists() and not (target.is_dir() and (not any(target.iterdir()) or (target / marker).exists())):
        raise FileExistsError(f"refusing to replace {target}: it exists and is not a directory written by "
                              f"deepfm_graph (no {marker})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        write(tmp)
        for path in tmp.rglob("*"):
            _fsync(path)
        _fsync(tmp)
    except BaseException:
        shutil.rmtree(tmp)
        raise
    if target.exists():
        old = tmp.with_name(tmp.name.replace(".tmp-", ".old-"))
        os.rename(target, old)  # the brief window without ``target`` ends at the next rename
        os.rename(tmp, target)
        shutil.rmtree(old)
    else:
        os.rename(tmp, target)
    _fsync(target.parent)
