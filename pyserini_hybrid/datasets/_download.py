"""Where the LAReQA files come from: local copies (md5-checked) or pinned downloads through ir_datasets.

Resolution order for ``{collection}/{lang}.json``:

1. ``data_dir`` argument, else the ``PYSERINI_HYBRID_DATA`` directory: the file must be there (never
   downloaded into it); a missing file is an error naming the expected path.
2. The ir_datasets cache, ``$IR_DATASETS_HOME/lareqa/{collection}/{lang}.json`` (default
   ``~/.ir_datasets``): downloaded once from the URL pinned in ``downloads.json`` unless
   ``PYSERINI_HYBRID_OFFLINE=1``, in which case a missing file is an error naming the expected path.

Every file is md5-checked against ``downloads.json``. ``PYSERINI_HYBRID_VERIFY=0`` skips the check
(for hand-made test data only).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

from pyserini_hybrid.datasets._ids import COLLECTIONS
from pyserini_hybrid.datasets._errors import LareqaDataError

__all__ = ['DATA_ENV', 'OFFLINE_ENV', 'VERIFY_ENV', 'downloads', 'collection_files', 'fetch', 'file_md5',
           'is_available']

DATA_ENV = 'PYSERINI_HYBRID_DATA'
OFFLINE_ENV = 'PYSERINI_HYBRID_OFFLINE'
VERIFY_ENV = 'PYSERINI_HYBRID_VERIFY'
_FALSE = ('0', 'false', 'no', 'off')
_TRUE = ('1', 'true', 'yes', 'on')


@functools.lru_cache(maxsize=1)
def downloads() -> dict[str, dict[str, dict[str, str]]]:
    """The pinned sources: ``{collection: {lang: {'url', 'expected_md5', 'cache_path'}}}`` (package data)."""
    text = resources.files('pyserini_hybrid.datasets').joinpath('downloads.json').read_text(encoding='utf-8')
    return json.loads(text)


@functools.lru_cache(maxsize=256)
def _md5_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.md5()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def file_md5(path: str | os.PathLike) -> str:
    """md5 of a file, memoised per (path, size, mtime) so repeated loads in a process cost a stat."""
    stat = os.stat(path)
    return _md5_cached(os.fspath(path), stat.st_size, stat.st_mtime_ns)


def _verify_default() -> bool:
    return os.environ.get(VERIFY_ENV, '1').strip().lower() not in _FALSE


def _check_md5(path: Path, expected: str) -> None:
    got = file_md5(path)
    if got != expected:
        raise LareqaDataError(f"{path}: md5 {got} does not match the pinned {expected}; the file is "
                              f"corrupt or another version (replace it with the pinned file)")


def fetch(url: str, expected_md5: str | None, dest: str | os.PathLike) -> Path:
    """Download ``url`` to ``dest`` through ir_datasets (temporary file, md5 check, rename).

    Raises
    ------
    LareqaDataError
        On a network failure or an md5 mismatch; ``dest`` is then left absent, and so are the
        folders this call created for it.
    """
    from ir_datasets.util import HashVerificationError
    from ir_datasets.util.download import Download, RequestsDownload

    dest = Path(dest)
    created = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        Download([RequestsDownload(url)], expected_md5=expected_md5, cache_path=str(dest)).path()
        return dest
    except BaseException as exc:
        for folder in created:  # deepest first; only folders this call made, only when empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, HashVerificationError):
            raise LareqaDataError(f"{url}: downloaded file failed its md5 check ({exc}); nothing was "
                                  f"saved to {dest}") from None
        if isinstance(exc, Exception):  # requests/OS errors: one line that says what to do offline
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LareqaDataError(f"could not download {url} ({reason}); put the file at {dest} or set "
                                  f"{DATA_ENV} to a directory holding {dest.parent.name}/{dest.name}") from None
        raise


def collection_files(collection: str, data_dir: str | os.PathLike | None = None,
                     verify: bool | None = None, download: bool = True) -> dict[str, Path]:
    """Paths of every language file of ``collection``, md5-checked, downloading when allowed.

    Parameters
    ----------
    collection : str
        ``'xquad-r'`` or ``'mlqa-r'``.
    data_dir : path, optional
        Directory holding ``{collection}/{lang}.json``; defaults to ``$PYSERINI_HYBRID_DATA``.
    verify : bool, optional
        Check md5 sums (default: on, unless ``PYSERINI_HYBRID_VERIFY=0``).
    download : bool
        Allow downloading missing files (also off when ``PYSERINI_HYBRID_OFFLINE=1``).

    Raises
    ------
    LareqaDataError
        A missing file (offline or under ``data_dir``), a failed download or an md5 mismatch.
    """
    if collection not in COLLECTIONS:
        raise ValueError(f"unknown collection {collection!r}; choices: {', '.join(COLLECTIONS)}")
    verify = _verify_default() if verify is None else verify
    if data_dir is None and os.environ.get(DATA_ENV):
        data_dir = os.environ[DATA_ENV]
    sources = downloads()[collection]
    files: dict[str, Path] = {}
    for lang in COLLECTIONS[collection]:
        entry = sources[lang]
        if data_dir is not None:
            path = Path(data_dir) / collection / f'{lang}.json'
            if not path.is_file():
                raise LareqaDataError(f"missing data file {path}; get it from {entry['url']}")
        else:
            from ir_datasets.util import home_path

            path = Path(home_path()) / 'lareqa' / entry['cache_path']
            if not path.is_file():
                if not download or os.environ.get(OFFLINE_ENV, '').strip().lower() in _TRUE:
                    raise LareqaDataError(f"missing data file {path} (offline); download {entry['url']} "
                                          f"there or set {DATA_ENV} to a directory holding {collection}/")
                fetch(entry['url'], entry['expected_md5'] if verify else None, path)
        if verify:
            _check_md5(path, entry['expected_md5'])
        files[lang] = path
    return files


def is_available(collection: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether every file of ``collection`` is on this machine (no download, no md5 check).

    Looks where :func:`collection_files` would: ``data_dir`` / ``$PYSERINI_HYBRID_DATA``, else the
    ir_datasets cache.
    """
    try:
        collection_files(collection, data_dir=data_dir, verify=False, download=False)
    except LareqaDataError:
        return False
    return True
