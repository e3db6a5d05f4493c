"""Training corpora as pair tables: items x languages, read from ``../shared/data/train``-style folders.

A :class:`PairTable` is one *source dataset*. Row ``i`` holds, for each of the table's languages, a
query text, a positive text and optionally a hard negative (``None`` where the language is absent):

- parallel pair corpora (XNLI entailment, PAWS-X paraphrases, NTREX next-sentence pairs) fill every
  language of an item, so one item gives mono rows (query and positive in one language) and cross
  rows (query in one language, positive in another);
- translation corpora (NTREX, Tatoeba, TICO) have ``same_text=True``: query and positive are the
  same sentence, so only cross rows (a sentence and its translation) exist;
- native QA corpora (TyDi, ARCD, CMRC, iapp, Zalo, WikiQA, XGLUE QAM) fill one language per item:
  mono rows only.

:meth:`PairTable.to_dataset` turns a table into a lazy ``datasets.Dataset`` whose row index encodes
``(item, query_lang, positive_lang)`` arithmetically; the batch samplers (:mod:`._samplers`) pick
indices, and the transform produces the ``anchor`` / ``positive`` [/ ``negative``] texts that the
sentence-transformers collator tokenises. :meth:`PairTable.to_distill_dataset` does the same for a
translation-distillation source: ``text`` (the row's positive) and ``label`` (a teacher vector).

The corpus adapters that build tables from files live in :mod:`._corpora` (registered in its
:data:`ADAPTERS`), file reading in :mod:`._files`, sentence splitting in :mod:`._sentences`; their
names are still importable from here, as before the split.
"""
from __future__ import annotations

import unicodedata
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

import numpy as np

from pyserini_hybrid.datasets._ids import COLLECTIONS
from pyserini_hybrid.datasets._ntrex import TRAIN_DATA_ENV, default_train_dir

__all__ = ['TRAIN_LANGUAGES', 'ZERO_SHOT_LANGUAGES', 'ALL_LANGUAGES', 'TRAIN_DATA_ENV', 'TrainDataError',
           'PairTable', 'RowTransform', 'DistillTransform', 'default_train_dir', 'pair_table', 'table_from_rows',
           'normalize_text', 'stable_hash']

# The paper's languages: XQuAD-R's 11 (MLQA-R's 7 are among them), defined once with the collections.
ALL_LANGUAGES: tuple[str, ...] = COLLECTIONS['xquad-r']
# Greek and Vietnamese are the paper's zero-shot languages: never trained on unless a recipe says so.
ZERO_SHOT_LANGUAGES = ('el', 'vi')
TRAIN_LANGUAGES = tuple(l for l in ALL_LANGUAGES if l not in ZERO_SHOT_LANGUAGES)


class TrainDataError(ValueError):
    """A missing or malformed training corpus file; the message names the file (and line)."""


def normalize_text(text: str) -> str:
    """Case-, width- and whitespace-insensitive form of a text (for overlap checks)."""
    return ' '.join(unicodedata.normalize('NFKC', text).casefold().split())


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (``hash()`` is salted per process)."""
    return zlib.crc32(text.encode('utf-8'))


# ----------------------------------------------------------------------------------------------
# the table


@dataclass(eq=False)
class PairTable:
    """One source dataset: ``queries[i, l]`` / ``positives[i, l]`` / ``negatives[i, l]`` texts.

    Attributes
    ----------
    name : str
        Source name (unique within a training run).
    langs : tuple of str
        Column languages.
    queries, positives : numpy object arrays ``[n_items, n_langs]``
        Texts, ``None`` where an item lacks the language.
    negatives : numpy object array or None
        Hard negatives in the positive's language (``None`` when the source has none).
    same_text : bool
        Query and positive are the same sentence (translation data): only cross rows exist.
    task : str or None
        Task description for an E5-instruct query template (instruction tuning).
    """

    name: str
    langs: tuple[str, ...]
    queries: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray | None = None
    same_text: bool = False
    task: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.langs = tuple(self.langs)
        n, nl = len(self.queries), len(self.langs)
        for what, arr in (('queries', self.queries), ('positives', self.positives), ('negatives', self.negatives)):
            if arr is not None and arr.shape != (n, nl):
                raise ValueError(f"{self.name}: {what} has shape {arr.shape}, expected {(n, nl)}")
        # masks are asked for per row by the samplers: compute them once
        self._qmask = _present(self.queries)
        self._pmask = _present(self.positives)
        if self.negatives is not None:
            self._pmask &= _present(self.negatives)

    # --- sizes and masks -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.queries)

    @property
    def n_langs(self) -> int:
        return len(self.langs)

    @property
    def n_rows(self) -> int:
        """Size of the row grid (``items x langs x langs``), valid or not."""
        return len(self) * self.n_langs * self.n_langs

    def query_mask(self) -> np.ndarray:
        """``[n_items, n_langs]``: the item has a query in that language."""
        return self._qmask

    def positive_mask(self) -> np.ndarray:
        """``[n_items, n_langs]``: the item has a positive (and negative, if any) in that language."""
        return self._pmask

    def mono_items(self, lang: str) -> np.ndarray:
        """Items that give a mono row in ``lang``."""
        if self.same_text or lang not in self.langs:
            return np.zeros(0, dtype=np.int64)
        j = self.langs.index(lang)
        return np.flatnonzero(self.query_mask()[:, j] & self.positive_mask()[:, j])

    def cross_items(self) -> np.ndarray:
        """Items that give at least one cross row (query and positive in different languages)."""
        q, p = self.query_mask(), self.positive_mask()
        nq, np_ = q.sum(1), p.sum(1)
        both = (q & p).sum(1)
        # a pair (lq != lp) exists unless the only query language is also the only positive language
        ok = (nq >= 1) & (np_ >= 1) & ~((nq == 1) & (np_ == 1) & (both == 1))
        return np.flatnonzero(ok)

    # --- rows ----------------------------------------------------------------------------------
    def row_index(self, item: int, query_lang: int, positive_lang: int) -> int:
        """Grid row of ``(item, query language index, positive language index)``."""
        return (item * self.n_langs + query_lang) * self.n_langs + positive_lang

    def decode(self, row: int) -> tuple[int, int, int]:
        """Inverse of :meth:`row_index`."""
        rest, positive_lang = divmod(int(row), self.n_langs)
        item, query_lang = divmod(rest, self.n_langs)
        return item, query_lang, positive_lang

    def row_texts(self, row: int) -> tuple[str, str, str | None]:
        """Raw ``(query, positive, negative)`` of a grid row (``''`` where absent)."""
        item, lq, lp = self.decode(row)
        query = self.queries[item, lq] or ''
        positive = self.positives[item, lp] or ''
        negative = None if self.negatives is None else (self.negatives[item, lp] or '')
        return query, positive, negative

    def row_langs(self, row: int) -> tuple[str, str]:
        _, lq, lp = self.decode(row)
        return self.langs[lq], self.langs[lp]

    def is_valid(self, row: int) -> bool:
        item, lq, lp = self.decode(row)
        if not (self.query_mask()[item, lq] and self.positive_mask()[item, lp]):
            return False
        return lq != lp if self.same_text else True

    def texts(self) -> Iterator[str]:
        """Every text of the table (for the zero-shot hygiene check)."""
        for arr in (self.queries, self.positives, self.negatives):
            if arr is None:
                continue
            for text in arr.ravel():
                if text:
                    yield text

    # --- splits --------------------------------------------------------------------------------
    def subset(self, items: Sequence[int] | np.ndarray, name: str | None = None) -> 'PairTable':
        items = np.asarray(items, dtype=np.int64)
        return replace(self, name=name or self.name, queries=self.queries[items], positives=self.positives[items],
                       negatives=None if self.negatives is None else self.negatives[items], meta=dict(self.meta))

    def split(self, fraction: float, max_items: int, seed: int) -> tuple['PairTable', 'PairTable']:
        """``(train, held_out)`` by item, so no translation of a held-out item is trained on."""
        n_out = min(int(round(len(self) * fraction)), max_items)
        order = np.random.default_rng([seed, stable_hash(self.name)]).permutation(len(self))
        held, kept = np.sort(order[:n_out]), np.sort(order[n_out:])
        return self.subset(kept), self.subset(held, name=self.name)

    # --- sentence-transformers dataset -----------------------------------------------------------
    def to_dataset(self, query_prefix: str = '', passage_prefix: str = '', query_template: str | None = None,
                   with_negatives: bool = True):
        """A lazy ``datasets.Dataset`` over the row grid, producing prefixed texts on access.

        The query prefix is ``query_template.format(task=self.task)`` when both a template and a
        task are set (E5-instruct), else ``query_prefix``.
        """
        from datasets import Dataset

        ds = Dataset.from_dict({'row': np.arange(self.n_rows, dtype=np.int64)})
        ds.set_transform(RowTransform(self, self.query_prefix(query_prefix, query_template), passage_prefix,
                                      with_negatives and self.negatives is not None))
        return ds

    def to_distill_dataset(self, teacher: np.ndarray, passage_prefix: str = ''):
        """A lazy dataset over the row grid for translation distillation (``objective: distill``).

        Each row gives ``text``: the row's positive (a translation, passage prefix applied), and
        ``label``: ``teacher[item]``, the frozen base model's embedding of the item's English text.
        """
        from datasets import Dataset

        if teacher.shape[0] != len(self):
            raise ValueError(f"{self.name}: {teacher.shape[0]} teacher vectors for {len(self)} items")
        ds = Dataset.from_dict({'row': np.arange(self.n_rows, dtype=np.int64)})
        ds.set_transform(DistillTransform(self, teacher, passage_prefix))
        return ds

    def query_prefix(self, query_prefix: str, query_template: str | None) -> str:
        if query_template and self.task:
            return query_template.format(task=self.task)
        return query_prefix


class RowTransform:
    """``datasets`` transform: grid rows -> ``anchor`` / ``positive`` [/ ``negative``] texts."""

    def __init__(self, table: PairTable, query_prefix: str, passage_prefix: str, with_negatives: bool):
        self.table = table
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.with_negatives = with_negatives

    def __call__(self, batch: dict[str, list]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {'anchor': [], 'positive': []}
        if self.with_negatives:
            out['negative'] = []
        for row in batch['row']:
            query, positive, negative = self.table.row_texts(row)
            out['anchor'].append(self.query_prefix + query)
            out['positive'].append(self.passage_prefix + positive)
            if self.with_negatives:
                out['negative'].append(self.passage_prefix + (negative or ''))
        return out


class DistillTransform(RowTransform):
    """``datasets`` transform: grid rows -> ``text`` (the positive) and ``label`` (its item's teacher vector)."""

    def __init__(self, table: PairTable, teacher: np.ndarray, passage_prefix: str):
        super().__init__(table, '', passage_prefix, with_negatives=False)
        self.teacher = teacher

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {'text': [], 'label': []}
        for row in batch['row']:
            item, _, _ = self.table.decode(row)
            out['text'].append(self.passage_prefix + self.table.row_texts(row)[1])
            out['label'].append(self.teacher[item].tolist())
        return out


def pair_table(dataset: Any) -> PairTable | None:
    """The :class:`PairTable` behind a dataset made by :meth:`PairTable.to_dataset` (else ``None``)."""
    fmt = getattr(dataset, 'format', None)
    transform = fmt.get('format_kwargs', {}).get('transform') if isinstance(fmt, dict) else None
    # sentence-transformers may wrap our transform in a partial(..., transform=ours)
    while transform is not None and not isinstance(transform, RowTransform):
        transform = getattr(transform, 'keywords', {}).get('transform')
    return transform.table if transform is not None else None


def _present(arr: np.ndarray) -> np.ndarray:
    return np.vectorize(bool, otypes=[bool])(arr) if arr.size else np.zeros(arr.shape, dtype=bool)


def table_from_rows(name: str, langs: Sequence[str], rows: list[dict[str, tuple]], *, same_text: bool = False,
                    with_negatives: bool = False) -> PairTable:
    """Build a table from ``[{lang: (query, positive[, negative])}]``, dropping empty and repeated items."""
    langs = tuple(langs)
    seen: set = set()
    kept: list[dict[str, tuple]] = []
    for row in rows:
        row = {l: v for l, v in row.items() if l in langs and all(t and t.strip() for t in v)}
        if not row or (same_text and len(row) < 2):
            continue
        key = tuple(sorted((l, v[:2]) for l, v in row.items()))
        if key in seen:
            continue
        seen.add(key)
        kept.append(row)
    used = tuple(l for l in langs if any(l in row for row in kept))
    n = len(kept)
    q = np.full((n, len(used)), None, dtype=object)
    p = np.full((n, len(used)), None, dtype=object)
    neg = np.full((n, len(used)), None, dtype=object) if with_negatives else None
    for i, row in enumerate(kept):
        for l, v in row.items():
            j = used.index(l)
            q[i, j] = v[0].strip()
            p[i, j] = v[1].strip()
            if neg is not None:
                neg[i, j] = v[2].strip()
    return PairTable(name=name, langs=used, queries=q, positives=p, negatives=neg, same_text=same_text)


# Names that moved to the modules split off this one (they import this module, so not at the top):
# ``from pyserini_hybrid.train._data import load_source`` keeps working.
_MOVED = {'ADAPTERS': '_corpora', 'adapter_options': '_corpora', 'load_source': '_corpora',
          'split_sentences': '_sentences', 'answer_sentence': '_sentences'}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f'pyserini_hybrid.train.{_MOVED[name]}'), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
