"""TREC run and qrels files: one strict reader and one deterministic, atomic writer each.

A run is ``{qid: [(docid, score), ...]}`` sorted by score descending, ties broken by docid
ascending, so the same scores always give the same bytes. (trec_eval re-sorts every run itself and
breaks ties by docid *descending*; the tie rule here only decides which tied hit a ``hits`` cut keeps.)
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import io
import math
import re
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np

from pyserini_hybrid._io import atomic_write

__all__ = ['Run', 'RunColumns', 'Qrels', 'TrecFormatError', 'read_run', 'read_run_columns', 'write_run',
           'read_qrels', 'write_qrels', 'sort_hits']

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]


# Whitespace that str.split() splits on besides space, tab and line breaks
_OTHER_WHITESPACE = re.compile('[\x0b\x0c\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]')
_ASCII_OTHER_WHITESPACE = (b'\x0b', b'\x0c', b'\x1c', b'\x1d', b'\x1e', b'\x1f')


class TrecFormatError(ValueError):
    """A run or qrels file that does not follow the TREC format; the message names file and line."""


def sort_hits(hits: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Score descending, then docid ascending: deterministic output order."""
    return sorted(hits, key=lambda h: (-h[1], h[0]))


def _block_starts(keys: np.ndarray) -> np.ndarray:
    """Index of the first element of each element's block of equal consecutive keys."""
    import numpy as np

    n = len(keys)
    new = np.ones(n, dtype=bool)
    new[1:] = keys[1:] != keys[:-1]
    return np.maximum.accumulate(np.where(new, np.arange(n), 0))


@dataclasses.dataclass(frozen=True)
class RunColumns:
    """A run as arrays, what reading, fusion and writing work on (a :data:`Run` costs ~1 s a
    setting of 100 hits for 1,190 queries in Python objects).

    Hit ``i`` is document ``docids[doc[i]]`` for query ``qids[query[i]]`` with ``score[i]``; the hits
    of a query are consecutive, in :func:`sort_hits` order, and every query has at least one.
    ``qids`` and ``docids`` are object arrays of distinct ids; ``docids`` is sorted.
    """
    qids: np.ndarray
    docids: np.ndarray
    query: np.ndarray
    doc: np.ndarray
    score: np.ndarray

    @classmethod
    def from_run(cls, run: Mapping[str, Sequence[tuple[str, float]]]) -> RunColumns:
        """The columns of ``run`` (queries in its order, hits sorted; a repeated docid is kept)."""
        import numpy as np

        qids = [q for q in run if run[q]]
        lens = [len(run[q]) for q in qids]
        hits = [hit for q in qids for hit in run[q]]
        docs = np.array([d for d, _ in hits], dtype=object)
        docids, doc = np.unique(docs, return_inverse=True) if len(docs) else (docs, np.zeros(0, np.int64))
        score = np.fromiter((v for _, v in hits), dtype=np.float64, count=len(hits))
        query = np.repeat(np.arange(len(qids)), lens)
        order = np.lexsort((doc, -score, query))   # stable: doc codes follow docid order
        return cls(np.array(qids, dtype=object), docids, query[order], doc.ravel()[order], score[order])

    def to_run(self) -> Run:
        """The :data:`Run` of these columns (queries in ``qids`` order of first hit)."""
        import numpy as np

        if not len(self.query):
            return {}
        docs = self.docids[self.doc].tolist()
        values = self.score.tolist()
        bounds = np.flatnonzero(np.r_[True, self.query[1:] != self.query[:-1], True]).tolist()
        names = self.qids[self.query[bounds[:-1]]].tolist()
        return {q: list(zip(docs[a:b], values[a:b])) for q, a, b in zip(names, bounds[:-1], bounds[1:])}


def write_run(run: Mapping[str, Sequence[tuple[str, float]]] | RunColumns, path: str | os.PathLike,
              tag: str = 'pyserini_hybrid', hits: int | None = None) -> Path:
    """Write ``run`` (a :data:`Run` or :class:`RunColumns`) as a six-column TREC run file, atomically.

    Queries are written in sorted qid order; each query's hits are sorted with :func:`sort_hits`
    and cut to ``hits`` when given. Scores are written with 6 decimals (as Pyserini does).
    """
    import numpy as np

    if hits is not None and hits <= 0:
        raise ValueError(f"hits must be positive, got {hits}")
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be one word, got {tag!r}")
    cols = run if isinstance(run, RunColumns) else RunColumns.from_run(run)
    query, doc, score = cols.query, cols.doc, cols.score
    qid_rank = np.empty(len(cols.qids), dtype=np.int64)
    qid_rank[np.argsort(cols.qids)] = np.arange(len(cols.qids))
    key = qid_rank[query]
    if np.any(key[1:] < key[:-1]):   # queries to sorted qid order, each one's hits kept in order
        order = np.argsort(key, kind='stable')
        key, query, doc, score = key[order], query[order], doc[order], score[order]
    rank = np.arange(len(key)) - _block_starts(key) + 1
    if hits is not None:
        keep = rank <= hits
        query, doc, score, rank = query[keep], doc[keep], score[keep], rank[keep]
    bad = np.flatnonzero(~np.isfinite(score))
    if len(bad):
        i = bad[0]
        raise ValueError(f"non-finite score {score[i]} for query {cols.qids[query[i]]}, doc {cols.docids[doc[i]]}")
    with atomic_write(path, 'wb') as out:
        out.write(_format_lines(cols, query, doc, score, rank, tag))
    return Path(path)


def _format_lines(cols: RunColumns, query: np.ndarray, doc: np.ndarray, score: np.ndarray, rank: np.ndarray,
                  tag: str) -> memoryview:
    """The UTF-8 bytes of the run lines ``qid Q0 docid rank score tag``, one per hit.

    Each distinct qid, docid, rank and score (bit pattern: -0.0 is not 0.0) is formatted once in
    Python; pyarrow gathers and concatenates the pieces (a Python ``join`` over every hit cost ~2/3
    of the time of fusing a setting).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(query):
        return memoryview(b'')
    codes, bits = pd.factorize(score.view(np.int64))   # hashing: far fewer distinct scores than hits
    text = pa.large_string()   # 64-bit offsets: a run may exceed 2 GiB
    pieces = [(pa.array([f'{q} Q0 ' for q in cols.qids.tolist()], text), query),
              (pa.array(cols.docids.tolist(), text), doc),
              (pa.array([f' {r}' for r in range(int(rank.max()) + 1)], text), rank),
              (pa.array([f' {v:.6f} {tag}\n' for v in np.asarray(bits).view(np.float64).tolist()], text), codes)]
    lines = pc.binary_join_element_wise(*[values.take(pa.array(index)) for values, index in pieces],
                                         pa.scalar('', text))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[int(offsets[0]):int(offsets[-1])]


def read_run(path: str | os.PathLike) -> Run:
    """Read a TREC run strictly: six columns, finite numeric scores, no duplicate (qid, docid).

    Raises
    ------
    TrecFormatError
        With the file name and line number of the first bad line.
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = Path(path)
    cols = _read_run_columnar(path)
    return cols.to_run() if cols is not None else _read_run_lines(path)


def read_run_columns(path: str | os.PathLike) -> RunColumns:
    """:func:`read_run` as :class:`RunColumns` (the same checks and errors)."""
    path = Path(path)
    cols = _read_run_columnar(path)
    return cols if cols is not None else RunColumns.from_run(_read_run_lines(path))


def _read_run_columnar(path: Path) -> RunColumns | None:
    """The run :func:`_read_run_lines` reads, as columns; None when the file breaks any rule, so
    that the line reader names the first bad line."""
    import numpy as np

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    # str.split() splits on more whitespace than the C parsers do
    if data.isascii():
        if any(c in data for c in _ASCII_OTHER_WHITESPACE):
            return None
    else:
        try:
            if _OTHER_WHITESPACE.search(data.decode('utf-8')):
                return None
        except UnicodeDecodeError:
            return None
    if not data or data.isspace():
        return RunColumns.from_run({})
    columns = _arrow_columns(data) if b'\t' not in data and b'\r' not in data else None
    columns = columns or _pandas_columns(data)
    if columns is None:
        return None
    qids, qid_codes, docids, doc_codes, scores = columns
    by_name = np.argsort(docids)                       # codes in docid order: sort_hits' tie rule
    code = np.empty(len(docids), dtype=np.int64)
    code[by_name] = np.arange(len(docids))
    docids, doc_codes = docids[by_name], code[doc_codes]
    if not np.isfinite(scores).all() or not _unique(qid_codes * max(len(docids), 1) + doc_codes):
        return None
    # files we wrote are in order already (checked in O(n)); others are sorted
    same = qid_codes[1:] == qid_codes[:-1]
    ordered = (scores[:-1] > scores[1:]) | ((scores[:-1] == scores[1:]) & (doc_codes[:-1] < doc_codes[1:]))
    if not np.all((qid_codes[1:] > qid_codes[:-1]) | (same & ordered)):
        order = np.lexsort((doc_codes, -scores, qid_codes))
        qid_codes, doc_codes, scores = qid_codes[order], doc_codes[order], scores[order]
    return RunColumns(qids, docids, qid_codes, doc_codes, scores)


def _unique(keys: np.ndarray) -> bool:
    import pandas as pd

    return pd.Index(keys).is_unique


def _arrow_columns(data: bytes):
    """(qids, qid codes, docids, doc codes, scores) of a run whose fields are parted by one space,
    parsed by pyarrow (~7x faster than pandas); None where pyarrow refuses it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    # ids straight into dictionaries (they are repeated, and it halves the parse time); the Q0 and tag
    # columns are only checked for emptiness, as bytes (the caller has checked the file is UTF-8)
    names, ids = [f'c{i}' for i in range(6)], pa.dictionary(pa.int32(), pa.string())
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data), read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=' ', quote_char=False, double_quote=False,
                                             escape_char=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict(zip(names, (ids, pa.binary(), ids, pa.int64(), pa.float64(), pa.binary()))),
                null_values=[], true_values=[], false_values=[], strings_can_be_null=False)).combine_chunks()
    except (pa.ArrowInvalid, ValueError):   # ragged lines, a rank int() may read or a score float() may
        return None
    qids, docs = table['c0'].chunk(0), table['c2'].chunk(0)
    qid_names, doc_names = qids.dictionary.to_pylist(), docs.dictionary.to_pylist()
    if '' in qid_names or '' in doc_names or any(pc.min(pc.binary_length(table[c])).as_py() == 0
                                                 for c in ('c1', 'c5')):   # a line's edge space
        return None
    return (np.array(qid_names, dtype=object), qids.indices.to_numpy().astype(np.int64),
            np.array(doc_names, dtype=object), docs.indices.to_numpy().astype(np.int64),
            table['c4'].chunk(0).to_numpy())


def _pandas_columns(data: bytes):
    """:func:`_arrow_columns` for any whitespace between fields, scores read by float()."""
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(data), sep=r'\s+', header=None, dtype=object, na_filter=False,
                            quoting=csv.QUOTE_NONE, engine='c', encoding='utf-8')
    except (ValueError, pd.errors.ParserError):   # ragged lines
        return None
    if frame.shape[1] != 6 or (frame[5].to_numpy(object) == '').any():   # a short line is padded with ''
        return None
    try:
        scores = np.fromiter(map(float, frame[4]), dtype=np.float64, count=len(frame))   # float(), as the line reader
        collections.deque(map(int, pd.unique(frame[3].to_numpy(object))), maxlen=0)     # int(), each rank once
    except ValueError:
        return None
    qid_codes, qids = pd.factorize(frame[0].to_numpy(object))   # first-appearance order, as the line reader
    doc_codes, docids = pd.factorize(frame[2].to_numpy(object))
    return (np.asarray(qids, dtype=object), qid_codes.astype(np.int64), np.asarray(docids, dtype=object),
            doc_codes.astype(np.int64), scores)


def _read_run_lines(path: Path) -> Run:
    run: Run = {}
    seen: set[tuple[str, str]] = set()
    for lineno, fields in _lines(path):
        if len(fields) != 6:
            raise TrecFormatError(f"{path}:{lineno}: expected 6 columns (qid Q0 docid rank score tag), "
                                  f"got {len(fields)}")
        qid, _, docid, rank, score, _tag = fields
        try:
            value = float(score)
            int(rank)
        except ValueError:
            raise TrecFormatError(f"{path}:{lineno}: rank {rank!r} / score {score!r} is not numeric") from None
        if not math.isfinite(value):
            raise TrecFormatError(f"{path}:{lineno}: score {score!r} is not a finite number")
        if (qid, docid) in seen:
            raise TrecFormatError(f"{path}:{lineno}: duplicate (query, doc) pair ({qid}, {docid})")
        seen.add((qid, docid))
        run.setdefault(qid, []).append((docid, value))
    return {qid: sort_hits(hits) for qid, hits in run.items()}


def write_qrels(qrels: Mapping[str, Mapping[str, int]], path: str | os.PathLike) -> Path:
    """Write TREC qrels (``qid 0 docid rel``) atomically, sorted by qid then docid."""
    with atomic_write(path) as out:
        for qid in sorted(qrels):
            for docid in sorted(qrels[qid]):
                out.write(f'{qid} 0 {docid} {int(qrels[qid][docid])}\n')
    return Path(path)


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Read TREC qrels strictly (four columns, integer relevance, no duplicates)."""
    path = Path(path)
    qrels: Qrels = {}
    for lineno, fields in _lines(path):
        if len(fields) != 4:
            raise TrecFormatError(f"{path}:{lineno}: expected 4 columns (qid iter docid rel), got {len(fields)}")
        qid, _, docid, rel = fields
        try:
            value = int(rel)
        except ValueError:
            raise TrecFormatError(f"{path}:{lineno}: relevance {rel!r} is not an integer") from None
        if docid in qrels.get(qid, {}):
            raise TrecFormatError(f"{path}:{lineno}: duplicate judgement for ({qid}, {docid})")
        qrels.setdefault(qid, {})[docid] = value
    return qrels


def _lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    try:
        handle = path.open(encoding='utf-8')
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    with handle:
        try:
            for lineno, line in enumerate(handle, start=1):
                fields = line.split()
                if fields:
                    yield lineno, fields
        except UnicodeDecodeError as exc:
            raise TrecFormatError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
