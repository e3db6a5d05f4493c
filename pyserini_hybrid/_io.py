"""Atomic file output: write to a temporary sibling, then rename.

A killed process never leaves a file at the final path that looks complete.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

__all__ = ['atomic_write', 'atomic_dir', 'check_output_path', 'current_umask']


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early, with one clear line, when ``path``'s directory is missing or read-only."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path('.')
    if not parent.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"output directory is not writable: {parent}")
    return path


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = 'w', encoding: str | None = 'utf-8') -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it over ``path`` only on success."""
    path = check_output_path(path)
    if 'b' in mode:
        encoding = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    except OSError as exc:
        raise PermissionError(f"cannot write in output directory {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; it replaces ``path`` only on success."""
    path = check_output_path(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent))
    except OSError as exc:
        raise PermissionError(f"cannot write in output directory {path.parent}: {exc.strerror}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if path.exists():
            old = path.with_name(f'.{path.name}.old')
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
