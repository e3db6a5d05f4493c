"""Zero-shot hygiene: refuse to train on any text of the evaluation sets.

The evaluation side is every XQuAD-R question, candidate sentence and context (and MLQA-R's when
its files are present). A training text leaks when its normalised form (NFKC, case-folded, spaces
collapsed), or one of its sentences, equals an evaluation question, sentence, context, or a sentence
of a context. Whole texts shorter than :data:`MIN_CHARS` and sentence pieces shorter than
:data:`MIN_PIECE_CHARS` (after normalisation) are not compared: a shared "Yes." or a Thai phrase
such as "before World War 1" is not a leak.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

from pyserini_hybrid.train._data import PairTable, normalize_text
from pyserini_hybrid.train._sentences import split_sentences

__all__ = ['ZeroShotLeakError', 'Overlap', 'MIN_CHARS', 'eval_index', 'find_overlaps', 'check_zero_shot',
           'available_collections', 'drop_overlapping']

MIN_CHARS = 12
MIN_PIECE_CHARS = 30


class ZeroShotLeakError(ValueError):
    """Training data contains evaluation text."""


class Overlap(NamedTuple):
    source: str      # training source name
    text: str        # the training text (or its sentence) that matched
    where: str       # e.g. 'xquad-r sentence en_12_3'


def available_collections() -> list[str]:
    """Evaluation collections to check: XQuAD-R always, MLQA-R when its files are on this machine.

    MLQA-R is never downloaded for this (XQuAD-R is, when missing and downloads are allowed).
    """
    from pyserini_hybrid.datasets import COLLECTIONS, is_available

    return [c for c in COLLECTIONS if c == 'xquad-r' or is_available(c)]


def eval_index(collections: Sequence[str] | None = None) -> dict[str, str]:
    """``{normalised text: where}`` over the evaluation questions, sentences and contexts."""
    from pyserini_hybrid.datasets import load_pool

    index: dict[str, str] = {}

    def add(text: str, where: str, min_chars: int = MIN_CHARS) -> None:
        key = normalize_text(text)
        if len(key) >= min_chars:
            index.setdefault(key, where)

    for collection in collections or available_collections():
        pool = load_pool(collection)
        for query in pool.queries:
            add(query.text, f'{collection} question {query.query_id}')
        seen_contexts: set[str] = set()
        for doc in pool.docs:
            add(doc.text, f'{collection} sentence {doc.doc_id}')
            if doc.context not in seen_contexts:
                seen_contexts.add(doc.context)
                add(doc.context, f'{collection} context of {doc.doc_id}')
                for s, e in split_sentences(doc.context, doc.lang):
                    add(doc.context[s:e], f'{collection} context of {doc.doc_id}', MIN_PIECE_CHARS)
    return index


def _pieces(text: str, lang: str) -> Iterable[str]:
    """Normalised forms of the text and of its sentences (long enough to compare)."""
    yield normalize_text(text)
    spans = split_sentences(text, lang)
    if len(spans) > 1:
        for s, e in spans:
            piece = normalize_text(text[s:e])
            if len(piece) >= MIN_PIECE_CHARS:
                yield piece


def find_overlaps(tables: Sequence[PairTable], index: dict[str, str] | None = None) -> list[Overlap]:
    """Every training text (or sentence of one) that occurs in the evaluation index."""
    index = eval_index() if index is None else index
    found: list[Overlap] = []
    for table in tables:
        for arr in (table.queries, table.positives, table.negatives):
            if arr is None:
                continue
            for j, lang in enumerate(table.langs):
                for text in arr[:, j]:
                    if not text:
                        continue
                    for piece in _pieces(text, lang):
                        where = index.get(piece)
                        if where is not None:
                            found.append(Overlap(table.name, piece, where))
                            break
    return found


def drop_overlapping(table: PairTable, index: dict[str, str]) -> tuple[PairTable, int]:
    """``table`` without the items that hold any evaluation text, and how many were dropped."""
    import numpy as np

    bad = np.zeros(len(table), dtype=bool)
    for arr in (table.queries, table.positives, table.negatives):
        if arr is None:
            continue
        for i in range(len(table)):
            if bad[i]:
                continue
            for j, lang in enumerate(table.langs):
                text = arr[i, j]
                if text and any(p in index for p in _pieces(text, lang)):
                    bad[i] = True
                    break
    return table.subset(np.flatnonzero(~bad)), int(bad.sum())


def check_zero_shot(tables: Sequence[PairTable], index: dict[str, str] | None = None) -> int:
    """Raise :class:`ZeroShotLeakError` if any training text occurs in the evaluation data.

    Returns the number of training texts checked.
    """
    index = eval_index() if index is None else index
    overlaps = find_overlaps(tables, index)
    if overlaps:
        first = overlaps[0]
        sources = sorted({o.source for o in overlaps})
        raise ZeroShotLeakError(
            f"refusing to train: {len(overlaps)} training text(s) from {', '.join(sources)} occur in the "
            f"evaluation data, e.g. {first.source}: {first.text[:80]!r} = {first.where}; drop them "
            "(data option drop_eval_overlap: true) or remove the corpus")
    return sum(1 for t in tables for _ in t.texts())
