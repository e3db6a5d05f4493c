"""ir_datasets components for the LAReQA ids; imported only once ir_datasets itself is imported.

Every component is lazy: nothing is read until docs/queries/qrels are iterated or counted, and then
the whole collection is parsed once per process through :func:`load_pool`.
"""
from __future__ import annotations

import functools
from importlib import resources
from typing import Iterator, Sequence

import ir_datasets
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, TrecQrel
from ir_datasets.indices import Docstore

from pyserini_hybrid.datasets._ids import COLLECTIONS, PREFIX, Setting, list_settings, parse_dataset_id
from pyserini_hybrid.datasets._lareqa import LareqaDoc, LareqaQuery, load_pool

__all__ = ['build_dataset', 'register_all']

QREL_DEFS = {1: 'answer sentence: the candidate whose span holds the answer, in the corpus language'}


class _ListIter:
    """An iterator over a list that also takes ``[i]`` and ``[a:b:c]``, like ir_datasets' docs_iter()."""

    def __init__(self, items: Sequence):
        self._items = items
        self._it = iter(items)

    def __iter__(self) -> '_ListIter':
        return self

    def __next__(self):
        return next(self._it)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return _ListIter(self._items[key])
        return self._items[key]


class LareqaDocstore(Docstore):
    """In-memory docstore over one corpus of the pool (the pool is already in memory)."""

    def __init__(self, docs: Sequence[LareqaDoc]):
        super().__init__(LareqaDoc, 'doc_id')
        self._docs = {d.doc_id: d for d in docs}

    def get_many_iter(self, doc_ids) -> Iterator[LareqaDoc]:
        for doc_id in doc_ids:
            if doc_id in self._docs:
                yield self._docs[doc_id]

    def count(self) -> int:
        return len(self._docs)

    def built(self) -> bool:
        return True

    def build(self) -> None:
        pass

    def __iter__(self):
        return iter(self._docs.values())


class LareqaDocs(BaseDocs):
    """The candidates of one corpus: one language (Mono/Cross) or all of them (Multi)."""

    def __init__(self, corpus: Setting):
        self._corpus = corpus

    def _docs(self) -> list[LareqaDoc]:
        pool = load_pool(self._corpus.collection)
        return [pool.docs[i] for i in pool.doc_indices(self._corpus)]

    def docs_iter(self) -> _ListIter:
        return _ListIter(self._docs())

    def docs_count(self) -> int:
        pool = load_pool(self._corpus.collection)
        return len(pool.doc_indices(self._corpus))

    def docs_cls(self):
        return LareqaDoc

    def docs_store(self, field: str = 'doc_id') -> LareqaDocstore:
        return LareqaDocstore(self._docs())

    def docs_namespace(self) -> str:
        return f'{PREFIX}/{self._corpus.collection}'

    def docs_lang(self) -> str | None:
        langs = self._corpus.doc_langs
        return langs[0] if len(langs) == 1 else None


class LareqaQueries(BaseQueries):
    def __init__(self, setting: Setting):
        self._setting = setting

    def queries_iter(self) -> Iterator[LareqaQuery]:
        pool = load_pool(self._setting.collection)
        return iter([pool.queries[i] for i in pool.query_indices(self._setting)])

    def queries_count(self) -> int:
        return len(load_pool(self._setting.collection).query_indices(self._setting))

    def queries_cls(self):
        return LareqaQuery

    def queries_namespace(self) -> str:
        return f'{PREFIX}/{self._setting.collection}'

    def queries_lang(self) -> str | None:
        return self._setting.query_lang


class LareqaQrels(BaseQrels):
    def __init__(self, setting: Setting):
        self._setting = setting

    def qrels_iter(self) -> Iterator[TrecQrel]:
        qrels = load_pool(self._setting.collection).qrels_for(self._setting)
        return iter([TrecQrel(qid, doc_id, rel, '0') for qid, docs in qrels.items()
                     for doc_id, rel in sorted(docs.items())])

    def qrels_count(self) -> int:
        qrels = load_pool(self._setting.collection).qrels_for(self._setting)
        return sum(len(docs) for docs in qrels.values())

    def qrels_cls(self):
        return TrecQrel

    def qrels_defs(self) -> dict[int, str]:
        return dict(QREL_DEFS)

    def qrels_path(self):
        raise NotImplementedError(f"{self._setting.dataset_id} qrels are built in memory; export them with "
                                  f"python -m pyserini_hybrid.datasets export")


@functools.lru_cache(maxsize=1)
def _docs_yaml() -> dict[str, dict[str, str]]:
    yaml = ir_datasets.lazy_libs.yaml()
    text = resources.files('pyserini_hybrid.datasets').joinpath('docs.yaml').read_text(encoding='utf-8')
    return yaml.load(text, Loader=yaml.BaseLoader)  # strings only, as ir_datasets reads its own docs


def documentation(dataset_id: str) -> dict[str, str]:
    """The docs.yaml entry of ``dataset_id``, templates filled in (ir_datasets' ``documentation()``)."""
    setting = parse_dataset_id(dataset_id)
    docs = _docs_yaml()
    if setting.kind == 'multi':
        return dict(docs.get(setting.collection, {}))
    if setting.kind == 'mono':
        key, values = f'{setting.collection}/{{lang}}', {'lang': setting.query_lang}
    else:
        key = f'{setting.collection}/{{query_lang}}-{{doc_lang}}'
        values = {'query_lang': setting.query_lang, 'doc_lang': setting.doc_langs[0]}
    out = {}
    for field, text in docs.get(key, {}).items():
        for name, value in values.items():
            text = text.replace(f'{{{name}}}', value)
        out[field] = text
    return out


class _Documentation:
    def __init__(self, dataset_id: str):
        self._dataset_id = dataset_id

    def documentation(self) -> dict[str, str]:
        return documentation(self._dataset_id)


def build_dataset(setting: Setting, docs: LareqaDocs) -> Dataset:
    return Dataset(docs, LareqaQueries(setting), LareqaQrels(setting), _Documentation(setting.dataset_id))


def register_all() -> None:
    """Register every id of every collection (idempotent: ids already present are left alone)."""
    for collection in COLLECTIONS:
        corpora: dict[tuple[str, ...], LareqaDocs] = {}
        for setting in list_settings(collection):
            if setting.dataset_id in ir_datasets.registry._registered:
                continue
            # One docs handler per corpus, so ir_datasets.docs_parent_id() sees the shared corpus.
            if setting.doc_langs not in corpora:
                corpus_id = (f'{PREFIX}/{collection}' if setting.kind == 'multi'
                             else f'{PREFIX}/{collection}/{setting.doc_langs[0]}')
                corpora[setting.doc_langs] = LareqaDocs(parse_dataset_id(corpus_id))
            ir_datasets.registry.register(setting.dataset_id, build_dataset(setting, corpora[setting.doc_langs]))
