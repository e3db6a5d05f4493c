"""Export one setting as plain files Pyserini and trec_eval read: topics.tsv, qrels.txt, corpus.jsonl."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from pyserini_hybrid._io import atomic_dir, check_output_path, current_umask
from pyserini_hybrid._trec import write_qrels
from pyserini_hybrid.datasets._ids import parse_dataset_id
from pyserini_hybrid.datasets._lareqa import load_pool

__all__ = ['EXPORT_FILES', 'default_export_dir', 'export_setting']

EXPORT_FILES = ('topics.tsv', 'qrels.txt', 'corpus.jsonl')
_CONTROL = re.compile(r'[\t\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+')


def default_export_dir(dataset_id: str) -> Path:
    """``topics/{dataset id with '/' -> '.'}``, e.g. ``topics/lareqa.xquad-r.en-de``."""
    return Path('topics') / parse_dataset_id(dataset_id).dataset_id.replace('/', '.')


def _one_line(text: str) -> str:
    # TSV topics: a tab or line break inside a question would split the row.
    return _CONTROL.sub(' ', text).strip()


def _write_all(dataset_id: str, target: Path) -> None:
    setting = parse_dataset_id(dataset_id)
    pool = load_pool(setting.collection)
    with open(target / 'topics.tsv', 'w', encoding='utf-8', newline='\n') as out:
        for i in pool.query_indices(setting):
            query = pool.queries[i]
            out.write(f'{query.query_id}\t{_one_line(query.text)}\n')
    write_qrels(pool.qrels_for(setting), target / 'qrels.txt')
    with open(target / 'corpus.jsonl', 'w', encoding='utf-8', newline='\n') as out:
        for i in pool.doc_indices(setting):
            doc = pool.docs[i]
            out.write(json.dumps({'id': doc.doc_id, 'contents': doc.text, 'lang': doc.lang},
                                 ensure_ascii=False) + '\n')
    # Temporary files and folders are private (0600/0700); exports are ordinary files.
    mask = current_umask()
    for name in EXPORT_FILES:
        os.chmod(target / name, 0o666 & ~mask)
    os.chmod(target, 0o777 & ~mask)


def export_setting(dataset_id: str, output_dir: str | os.PathLike | None = None) -> Path:
    """Write ``topics.tsv`` (qid TAB text), ``qrels.txt`` (TREC) and ``corpus.jsonl`` for a setting.

    ``corpus.jsonl`` rows are ``{"id", "contents", "lang"}`` (Pyserini's JsonCollection). All three
    files appear together or not at all: they are written to a temporary directory and renamed.

    Parameters
    ----------
    dataset_id : str
        E.g. ``'lareqa/xquad-r/en-de'``.
    output_dir : path, optional
        Target directory (created if missing; its parent must exist). Default
        :func:`default_export_dir` under ``topics/`` (created if needed).

    Returns
    -------
    Path
        The output directory.
    """
    setting = parse_dataset_id(dataset_id)
    load_pool(setting.collection)  # bad id or bad data: fail before touching the disk
    if output_dir is None:
        output_dir = default_export_dir(dataset_id)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
    output_dir = Path(output_dir)
    if not output_dir.exists():
        with atomic_dir(output_dir) as tmp:
            _write_all(dataset_id, tmp)
        return output_dir
    if not output_dir.is_dir():
        raise NotADirectoryError(f"output path exists and is not a directory: {output_dir}")
    check_output_path(output_dir / EXPORT_FILES[0])  # one clear line for a read-only directory
    # Existing directory: write beside the targets, then rename the three files into place.
    tmp = Path(tempfile.mkdtemp(prefix='.export.', suffix='.tmp', dir=output_dir))
    try:
        _write_all(dataset_id, tmp)
        for name in EXPORT_FILES:
            os.replace(tmp / name, output_dir / name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return output_dir
