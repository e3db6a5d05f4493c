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
sentence-transformers collator tokenises.

Adapters are registered in :data:`ADAPTERS` by corpus name; each takes the data folder, the wanted
languages and keyword options (which a recipe's ``data`` entry may set).
"""
from __future__ import annotations

import csv
import inspect
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from pyserini_hybrid.datasets._ntrex import (TRAIN_DATA_ENV, NtrexError, default_train_dir, is_validation_document,
                                             read_ntrex)

__all__ = ['TRAIN_LANGUAGES', 'ZERO_SHOT_LANGUAGES', 'ALL_LANGUAGES', 'TRAIN_DATA_ENV', 'TrainDataError',
           'PairTable', 'ADAPTERS', 'adapter_options', 'load_source', 'default_train_dir', 'pair_table',
           'split_sentences', 'answer_sentence', 'normalize_text']

ALL_LANGUAGES = ('ar', 'de', 'el', 'en', 'es', 'hi', 'ru', 'th', 'tr', 'vi', 'zh')
# Greek and Vietnamese are the paper's zero-shot languages: never trained on unless a recipe says so.
ZERO_SHOT_LANGUAGES = ('el', 'vi')
TRAIN_LANGUAGES = tuple(l for l in ALL_LANGUAGES if l not in ZERO_SHOT_LANGUAGES)


class TrainDataError(ValueError):
    """A missing or malformed training corpus file; the message names the file (and line)."""


def normalize_text(text: str) -> str:
    """Case-, width- and whitespace-insensitive form of a text (for overlap checks)."""
    return ' '.join(unicodedata.normalize('NFKC', text).casefold().split())


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
        order = np.random.default_rng([seed, _stable_hash(self.name)]).permutation(len(self))
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


def _stable_hash(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode('utf-8'))


def _table(name: str, langs: Sequence[str], rows: list[dict[str, tuple]], *, same_text: bool = False,
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


# ----------------------------------------------------------------------------------------------
# file helpers


def _need(path: Path, corpus: str) -> Path:
    if not path.is_file():
        raise TrainDataError(f"missing training file {path} (corpus {corpus!r}); see ../shared/data/README.md")
    return path


def _read_lines(path: Path, corpus: str) -> list[str]:
    try:
        text = _need(path, corpus).read_bytes().decode('utf-8')
    except UnicodeDecodeError as exc:
        raise TrainDataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    # split on newlines only: str.splitlines() would also break at U+2028, U+0085 etc. inside texts
    lines = [line.rstrip('\r') for line in text.split('\n')]
    if lines and lines[-1] == '':
        lines.pop()
    return lines


def _read_tsv(path: Path, corpus: str, n_fields: int | tuple[int, ...]) -> list[list[str]]:
    wanted = (n_fields,) if isinstance(n_fields, int) else n_fields
    rows = []
    for lineno, line in enumerate(_read_lines(path, corpus), 1):
        fields = line.split('\t')
        if len(fields) not in wanted:
            raise TrainDataError(f"{path}:{lineno}: expected {' or '.join(map(str, wanted))} tab-separated "
                                 f"fields, got {len(fields)}")
        rows.append(fields)
    return rows


def _read_json(path: Path, corpus: str, raw: bytes | None = None) -> Any:
    try:
        data = raw if raw is not None else _need(path, corpus).read_bytes()
        return json.loads(data.decode('utf-8'))
    except UnicodeDecodeError as exc:
        raise TrainDataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise TrainDataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


# ----------------------------------------------------------------------------------------------
# sentences (for question -> answer-sentence pairs from SQuAD-style corpora)

_SENT_BREAK = re.compile(r'(?<=[.!?\u061f\u06d4\u0964\u0965])[\"\'\u201d\u2019)\]]*\s+|(?<=[\u3002\uff01\uff1f\uff1b])')


def split_sentences(text: str, lang: str, min_chars: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``[start, end)`` of ``text`` (rule-based; Thai splits at spaces).

    Fragments shorter than ``min_chars`` (default 20, Thai 40: its spaces also end phrases) are
    merged into a neighbouring span.
    """
    if min_chars is None:
        min_chars = 40 if lang == 'th' else 20
    pattern = re.compile(r'\s+') if lang == 'th' else _SENT_BREAK
    spans: list[tuple[int, int]] = []
    start = 0
    for match in pattern.finditer(text):
        end = match.start() if lang == 'th' else match.end()
        if end > start:
            spans.append((start, end))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and (len(text[merged[-1][0]:merged[-1][1]].strip()) < min_chars
                       or len(text[s:e].strip()) < min_chars):
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def answer_sentence(context: str, answer_start: int, answer_end: int, lang: str) -> str | None:
    """The sentence(s) of ``context`` that hold the answer span, or ``None`` when out of range."""
    if not 0 <= answer_start < len(context):
        return None
    spans = split_sentences(context, lang)
    first = next((i for i, (s, e) in enumerate(spans) if s <= answer_start < e), None)
    if first is None:
        return None
    last = first
    while last + 1 < len(spans) and spans[last][1] < answer_end:
        last += 1
    return context[spans[first][0]:spans[last][1]].strip()


def _squad_pairs(data: Any, path: Path, lang: str, passages: bool = False) -> list[dict[str, tuple]]:
    """SQuAD-format JSON -> ``[{lang: (question, answer sentence or passage)}]``."""
    rows = []
    articles = data.get('data') if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise TrainDataError(f"{path}: expected a SQuAD-format object with a 'data' list")
    for article in articles:
        for paragraph in article.get('paragraphs', []):
            context = paragraph.get('context')
            if not isinstance(context, str):
                raise TrainDataError(f"{path}: a paragraph has no 'context' text")
            for qa in paragraph.get('qas', []):
                question = (qa.get('question') or '').strip(' -\t\n')
                if passages:
                    rows.append({lang: (question, context)})
                    continue
                answers = qa.get('answers') or []
                if not answers or not answers[0].get('text'):
                    continue
                start = answers[0].get('answer_start')
                if not isinstance(start, int):
                    raise TrainDataError(f"{path}: question {qa.get('id')!r} has no integer answer_start")
                sentence = answer_sentence(context, start, start + len(answers[0]['text']), lang)
                if sentence:
                    rows.append({lang: (question, sentence)})
    return rows


# ----------------------------------------------------------------------------------------------
# adapters: each returns one PairTable


def xnli(train_dir: Path, langs: Sequence[str], *, splits: list[str] = ('dev', 'test'),
         label: str = 'entailment') -> PairTable:
    """XNLI hypothesis -> premise pairs of one label, 11-way parallel (mono and cross rows).

    The test split has no labels in ``xnli/``; they come from ``xglue-de/xnli-test.tsv`` (same line
    order in every language).
    """
    if label not in ('entailment', 'neutral', 'contradiction'):
        raise TrainDataError(f"xnli: unknown label {label!r} (entailment, neutral or contradiction)")
    items: list[dict[str, tuple]] = []
    for split in splits:
        if split not in ('dev', 'test'):
            raise TrainDataError(f"xnli: unknown split {split!r} (dev or test)")
        if split == 'dev':
            labels = [f[2] for f in _read_tsv(train_dir / 'xnli' / 'dev-en.tsv', 'xnli', 3)]
        else:
            labels = [f[2] for f in _read_tsv(train_dir / 'xglue-de' / 'xnli-test.tsv', 'xglue-de', 3)]
        keep = [i for i, lab in enumerate(labels) if lab == label]
        block = [dict() for _ in keep]
        for lang in langs:
            path = train_dir / 'xnli' / f'{split}-{lang}.tsv'
            if not path.is_file():
                continue
            rows = _read_tsv(path, 'xnli', (2, 3))
            if len(rows) != len(labels):
                raise TrainDataError(f"{path}: {len(rows)} lines, expected {len(labels)} (line-aligned)")
            for slot, i in zip(block, keep):
                slot[lang] = (rows[i][1], rows[i][0])
        items.extend(block)
    return _table('xnli', langs, items)


def ntrex(train_dir: Path, langs: Sequence[str], *, mode: str = 'next-sentence',
          validation_holdout: bool = True) -> PairTable:
    """NTREX-128 news sentences, line-aligned across languages.

    ``mode='translation'``: a sentence and its translation (cross rows only).
    ``mode='next-sentence'``: a sentence -> the next sentence of the same document (mono and cross).
    ``validation_holdout``: leave out the documents of the NTREX validation benchmark
    (:func:`pyserini_hybrid.datasets.load_validation_pool`), so model selection sees unseen text.
    """
    if mode not in ('translation', 'next-sentence'):
        raise TrainDataError(f"ntrex: unknown mode {mode!r} (translation or next-sentence)")
    try:
        docs, text = read_ntrex(train_dir / 'ntrex', langs)
    except NtrexError as exc:
        raise TrainDataError(str(exc)) from None
    keep = [not (validation_holdout and is_validation_document(d)) for d in docs]
    if mode == 'translation':
        items = [{l: (t[i], t[i]) for l, t in text.items()} for i in range(len(docs)) if keep[i]]
        table = _table('ntrex', langs, items, same_text=True)
    else:
        items = [{l: (t[i], t[i + 1]) for l, t in text.items()}
                 for i in range(len(docs) - 1) if docs[i] == docs[i + 1] and keep[i]]
        table = _table('ntrex', langs, items)
    table.meta['mode'] = mode
    return table


_TATOEBA = {'ar': 'ara', 'de': 'deu', 'el': 'ell', 'es': 'spa', 'hi': 'hin', 'ru': 'rus', 'th': 'tha', 'tr': 'tur',
            'vi': 'vie', 'zh': 'cmn'}


def tatoeba(train_dir: Path, langs: Sequence[str]) -> PairTable:
    """Tatoeba (LASER) sentence pairs X <-> English: translation (cross) rows only."""
    items = []
    if 'en' in langs:
        for lang in langs:
            code = _TATOEBA.get(lang)
            if code is None:
                continue
            base = train_dir / 'tatoeba' / f'tatoeba.{code}-eng'
            if not Path(f'{base}.{code}').is_file():
                continue
            xs = _read_lines(Path(f'{base}.{code}'), 'tatoeba')
            ens = _read_lines(Path(f'{base}.eng'), 'tatoeba')
            if len(xs) != len(ens):
                raise TrainDataError(f"{base}.{code}: {len(xs)} lines but {base}.eng has {len(ens)}")
            items.extend({lang: (x, x), 'en': (e, e)} for x, e in zip(xs, ens))
    return _table('tatoeba', langs, items, same_text=True)


def tico(train_dir: Path, langs: Sequence[str]) -> PairTable:
    """TICO-19 translation memories, joined on ``tuid`` into 6-way parallel sentences (cross rows only)."""
    by_id: dict[str, dict[str, tuple]] = {}
    for path in sorted((train_dir / 'tico').glob('all.en-*.tmx.zip')):
        lang = path.name[len('all.en-'):].split('.')[0].split('-')[0]
        if lang not in langs and 'en' not in langs:
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                root = ET.fromstring(zf.read(zf.namelist()[0]))
        except (zipfile.BadZipFile, ET.ParseError, IndexError) as exc:
            raise TrainDataError(f"{path}: cannot read TMX ({exc})") from None
        for tu in root.iter('tu'):
            tuid = tu.get('tuid')
            for tuv in tu.iter('tuv'):
                code = (tuv.get('{http://www.w3.org/XML/1998/namespace}lang') or '').split('-')[0]
                seg = tuv.find('seg')
                if code in langs and seg is not None and seg.text:
                    by_id.setdefault(tuid, {})[code] = (seg.text, seg.text)
    return _table('tico', langs, list(by_id.values()), same_text=True)


def pawsx(train_dir: Path, langs: Sequence[str]) -> PairTable:
    """PAWS-X dev paraphrase pairs (label 1), line-aligned across de/en/es/zh (mono and cross rows).

    The test files carry no labels (and PAWS pairs are often adversarial non-paraphrases): unused.
    """
    en = _read_tsv(train_dir / 'pawsx' / 'dev-en.tsv', 'pawsx', 3)
    keep = [i for i, f in enumerate(en) if f[2].strip() == '1']
    items: list[dict[str, tuple]] = [dict() for _ in keep]
    for lang in langs:
        path = train_dir / 'pawsx' / f'dev-{lang}.tsv'
        if not path.is_file():
            continue
        rows = _read_tsv(path, 'pawsx', 3)
        if len(rows) != len(en):
            raise TrainDataError(f"{path}: {len(rows)} lines, expected {len(en)} (line-aligned)")
        for slot, i in zip(items, keep):
            slot[lang] = (rows[i][0], rows[i][1])
    return _table('pawsx', langs, items)


def tydiqa(train_dir: Path, langs: Sequence[str], *, dev_passages: bool = True) -> PairTable:
    """TyDi QA GoldP: English train question -> answer sentence; with ``dev_passages`` also the
    en/ar/ru dev questions -> their passage (answers are blanked there). Mono rows only."""
    items: list[dict[str, tuple]] = []
    folder = train_dir / 'tydiqa'
    if 'en' in langs:
        path = folder / 'tydiqa.goldp.en.train.json'
        items += _squad_pairs(_read_json(path, 'tydiqa'), path, 'en')
    if dev_passages:
        for lang in ('ar', 'en', 'ru'):
            path = folder / f'tydiqa.goldp.{lang}.dev.json'
            if lang in langs and path.is_file():
                items += _squad_pairs(_read_json(path, 'tydiqa'), path, lang, passages=True)
    return _table('tydiqa', langs, items)


def _squad_corpus(name: str, lang: str, files: Sequence[str]) -> Callable[..., PairTable]:
    def adapter(train_dir: Path, langs: Sequence[str]) -> PairTable:
        items: list[dict[str, tuple]] = []
        if lang in langs:
            for file in files:
                path = train_dir / name / file
                items += _squad_pairs(_read_json(path, name), path, lang)
        return _table(name, langs, items)

    adapter.__name__ = name
    adapter.__doc__ = f"{name} ({lang}), SQuAD format: question -> answer sentence (mono rows only)."
    return adapter


arcd = _squad_corpus('arcd', 'ar', ('arcd-train.json', 'arcd-test.json'))
cmrc2018 = _squad_corpus('cmrc2018', 'zh', ('cmrc2018_trial.json', 'cmrc2018_dev.json'))
zalo = _squad_corpus('zalo', 'vi', ('train_wiki.json', 'test_wiki.json'))


def iapp(train_dir: Path, langs: Sequence[str], *, splits: list[str] = ('train', 'valid', 'test')) -> PairTable:
    """iapp-wiki-qa (Thai): question -> answer sentence, read from ``data.zip`` in memory (mono rows)."""
    items: list[dict[str, tuple]] = []
    if 'th' in langs:
        path = _need(train_dir / 'iapp' / 'data.zip', 'iapp')
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise TrainDataError(f"{path}: not a zip file ({exc})") from None
        with zf:
            for split in splits:
                member = f'data/{split}.jsonl'
                try:
                    raw = zf.read(member).decode('utf-8')
                except KeyError:
                    raise TrainDataError(f"{path}: no member {member}") from None
                for lineno, line in enumerate(raw.splitlines(), 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                        answers = rec['answers']
                        context, question = rec['context'], rec['question']
                    except (json.JSONDecodeError, KeyError, TypeError) as exc:
                        raise TrainDataError(f"{path}!{member}:{lineno}: bad record ({exc})") from None
                    if not answers.get('text') or not answers['text'][0]:
                        continue
                    start = answers['answer_start'][0]
                    sentence = answer_sentence(context, start, start + len(answers['text'][0]), 'th')
                    if sentence:
                        items.append({'th': (question, sentence)})
    return _table('iapp', langs, items)


def wikiqa(train_dir: Path, langs: Sequence[str], *, splits: list[str] = ('train', 'dev', 'test'),
           hard_negatives: bool = True) -> PairTable:
    """WikiQA (English): question -> answer sentence; the same page's other sentences are hard negatives.

    With ``hard_negatives``, each item keeps one negative (questions without one are dropped); the
    choice is fixed per item so runs are reproducible.
    """
    items: list[dict[str, tuple]] = []
    if 'en' not in langs:
        return _table('wikiqa', langs, items, with_negatives=hard_negatives)
    for split in splits:
        path = train_dir / 'wikiqa' / f'WikiQA-{split}.tsv'
        rows = _read_tsv(path, 'wikiqa', (5, 7))
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for lineno, fields in enumerate(rows[1:], 2):
            question, sentence, label = fields[1], fields[-2], fields[-1].strip()
            if label not in ('0', '1'):
                raise TrainDataError(f"{path}:{lineno}: label must be 0 or 1, got {label!r}")
            pos, neg = groups.setdefault(question, ([], []))
            (pos if label == '1' else neg).append(sentence)
        for question, (pos, neg) in groups.items():
            if not pos or (hard_negatives and not neg):
                continue
            rng = np.random.default_rng(_stable_hash(question))
            for sentence in pos:
                if hard_negatives:
                    items.append({'en': (question, sentence, neg[int(rng.integers(len(neg)))])})
                else:
                    items.append({'en': (question, sentence)})
    return _table('wikiqa', langs, items, with_negatives=hard_negatives)


def xglue_qam(train_dir: Path, langs: Sequence[str], *, splits: list[str] = ('train', 'dev', 'test')) -> PairTable:
    """XGLUE QAM (German): query -> relevant passage (label 1), mono rows only."""
    items: list[dict[str, tuple]] = []
    if 'de' in langs:
        for split in splits:
            path = train_dir / 'xglue-de' / f'qam-{split}.tsv'
            for lineno, fields in enumerate(_read_tsv(path, 'xglue-de', 3), 1):
                if fields[2].strip() == '1':
                    items.append({'de': (fields[0], fields[1])})
    return _table('xglue-qam', langs, items)


ADAPTERS: dict[str, Callable[..., PairTable]] = {
    'xnli': xnli, 'ntrex': ntrex, 'tatoeba': tatoeba, 'tico': tico, 'pawsx': pawsx, 'tydiqa': tydiqa,
    'arcd': arcd, 'cmrc2018': cmrc2018, 'iapp': iapp, 'zalo': zalo, 'wikiqa': wikiqa, 'xglue-qam': xglue_qam,
}


def adapter_options(name: str) -> dict[str, tuple[type, Any]]:
    """Keyword options of an adapter: ``{option: (type, default)}`` (for strict recipe checking)."""
    if name not in ADAPTERS:
        raise KeyError(name)
    out = {}
    for param in inspect.signature(ADAPTERS[name]).parameters.values():
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            kind = {'bool': bool, 'str': str, 'int': int, 'float': float, 'list[str]': list}.get(
                str(param.annotation), type(param.default))
            out[param.name] = (kind, param.default)
    return out


def load_source(name: str, train_dir: str | Path, langs: Sequence[str], *, task: str | None = None,
                **options: Any) -> PairTable:
    """Read one corpus with its adapter, keeping only ``langs``.

    Raises
    ------
    TrainDataError
        Unknown corpus, missing file or malformed content (one line naming the file).
    """
    if name not in ADAPTERS:
        raise TrainDataError(f"unknown training corpus {name!r}; choices: {', '.join(sorted(ADAPTERS))}")
    train_dir = Path(train_dir)
    if not train_dir.is_dir():
        raise TrainDataError(f"training data folder not found: {train_dir} (set {TRAIN_DATA_ENV} or --train-dir)")
    table = ADAPTERS[name](train_dir, tuple(langs), **options)
    table.task = task
    table.meta.update(options)
    return table


# Instruction pairs (English, mono rows) have their own module; registered here so that every recipe
# sees them, whatever was imported first.
from pyserini_hybrid.train._instructions import instructions as _instructions  # noqa: E402

ADAPTERS.setdefault('instructions', _instructions)
