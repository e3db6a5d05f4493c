"""LAReQA (XQuAD-R / MLQA-R) parsing with the reference rules, and the per-process pool cache.

Rules (LAReQA, arXiv 2004.05484, and its reference implementation):

- candidates are the paragraph's ``sentences``; candidate id ``{lang}_{p}_{s}`` with ``p`` the 0-based
  paragraph counter over the whole file in file order and ``s`` the sentence index in the paragraph;
- a question's answer sentence is the one whose ``sentence_breaks`` span ``[start, end)`` holds the
  (first) answer's ``answer_start``; question id ``{squad_id}_{lang}``;
- a question's relevant set is the answer sentence of every language where its SQuAD id appears.
"""
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from pyserini_hybrid.datasets._download import collection_files
from pyserini_hybrid.datasets._errors import LareqaDataError
from pyserini_hybrid.datasets._ids import COLLECTIONS, Setting, parse_dataset_id

if TYPE_CHECKING:
    import numpy as np

__all__ = ['LareqaDoc', 'LareqaQuery', 'LareqaDataError', 'ParsedFile', 'parse_file', 'Pool', 'load_pool',
           'clear_cache']


class LareqaDoc(NamedTuple):
    """A candidate sentence; ``doc_id`` is ``{lang}_{p}_{s}``."""
    doc_id: str
    text: str
    lang: str
    context: str

    def default_text(self) -> str:
        """The text ir_datasets tools index: the sentence alone."""
        return self.text


class LareqaQuery(NamedTuple):
    """A question; ``query_id`` is ``{squad_id}_{lang}``."""
    query_id: str
    text: str
    lang: str

    def default_text(self) -> str:
        return self.text


class ParsedFile(NamedTuple):
    """One language file: its candidates, its questions and each question's answer doc id."""
    lang: str
    docs: list[LareqaDoc]
    questions: list[tuple[str, str]]   # (squad_id, question text), file order
    answers: dict[str, str]            # squad_id -> answer doc id


def _where(*steps: Any) -> str:
    out = ''
    for step in steps:
        out += f'[{step}]' if isinstance(step, int) else (f'.{step}' if out else step)
    return out


def _load_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LareqaDataError(f"missing data file {path}") from None
    except OSError as exc:
        raise LareqaDataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise LareqaDataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LareqaDataError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg}); truncated or "
                              f"corrupt file?") from None


def _field(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(obj, dict):
        raise LareqaDataError(f"{path}: {where or 'top level'} is not a JSON object")
    if key not in obj:
        raise LareqaDataError(f"{path}: {_where(where, key)} is missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else '/'.join(k.__name__ for k in kind)
        raise LareqaDataError(f"{path}: {_where(where, key)} should be {names}, got {type(value).__name__}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_file(path: str | os.PathLike, lang: str) -> ParsedFile:
    """Parse one LAReQA SQuAD-format file (with ``sentences`` and ``sentence_breaks``).

    Parameters
    ----------
    path : path
        The JSON file, e.g. ``xquad-r/de.json``.
    lang : str
        Its language code; used in every id.

    Raises
    ------
    LareqaDataError
        One line naming the file and the JSON location of the first problem: invalid UTF-8 or JSON,
        a missing or mistyped field, sentence breaks that are not ordered spans inside the context or
        do not match the sentences, an ``answer_start`` outside every sentence, a repeated question id.
    """
    path = Path(path)
    data = _field(_load_json(path), 'data', list, path, '')
    docs: list[LareqaDoc] = []
    questions: list[tuple[str, str]] = []
    answers: dict[str, str] = {}
    p = 0  # paragraph counter over the whole file, as the reference implementation counts
    for a, article in enumerate(data):
        paragraphs = _field(article, 'paragraphs', list, path, _where('data', a))
        for j, paragraph in enumerate(paragraphs):
            where = _where('data', a, 'paragraphs', j)
            context = _field(paragraph, 'context', str, path, where)
            sentences = _field(paragraph, 'sentences', list, path, where)
            breaks = _field(paragraph, 'sentence_breaks', list, path, where)
            if len(breaks) != len(sentences):
                raise LareqaDataError(f"{path}: {where}: {len(sentences)} sentences but {len(breaks)} "
                                      f"sentence_breaks")
            previous_end = 0
            for s, (sentence, span) in enumerate(zip(sentences, breaks)):
                if not isinstance(sentence, str):
                    raise LareqaDataError(f"{path}: {_where(where, 'sentences', s)} is not a string")
                if not (isinstance(span, list) and len(span) == 2 and all(_is_int(x) for x in span)):
                    raise LareqaDataError(f"{path}: {_where(where, 'sentence_breaks', s)} should be "
                                          f"[start, end] integers, got {span!r}")
                start, end = span
                # Spans may leave gaps (spaces, bullets) but must be ordered and inside the context.
                if not (previous_end <= start < end <= len(context)):
                    raise LareqaDataError(
                        f"{path}: {_where(where, 'sentence_breaks', s)} = [{start}, {end}] does not cover "
                        f"the context (need {previous_end} <= start < end <= {len(context)})")
                previous_end = end
                docs.append(LareqaDoc(f'{lang}_{p}_{s}', sentence, lang, context))
            qas = _field(paragraph, 'qas', list, path, where)
            for k, qa in enumerate(qas):
                qwhere = _where(where, 'qas', k)
                squad_id = _field(qa, 'id', str, path, qwhere)
                question = _field(qa, 'question', str, path, qwhere)
                qa_answers = _field(qa, 'answers', list, path, qwhere)
                if not qa_answers:
                    raise LareqaDataError(f"{path}: {qwhere} (id {squad_id}): no answers")
                answer_start = _field(qa_answers[0], 'answer_start', int, path, _where(qwhere, 'answers', 0))
                hit = next((s for s, (start, end) in enumerate(breaks) if start <= answer_start < end), None)
                if hit is None:
                    raise LareqaDataError(f"{path}: {qwhere} (id {squad_id}): answer_start {answer_start} lies "
                                          f"outside every sentence span")
                if squad_id in answers:
                    raise LareqaDataError(f"{path}: {qwhere}: duplicate question id {squad_id}")
                answers[squad_id] = f'{lang}_{p}_{hit}'
                questions.append((squad_id, question))
            p += 1
    return ParsedFile(lang, docs, questions, answers)


class Pool:
    """A whole LAReQA collection: every candidate and question of every language, and the Multi qrels.

    Build it with :func:`load_pool`. ``docs`` and ``queries`` are in language order of
    :data:`COLLECTIONS` then file order; settings select from them by index.

    Attributes
    ----------
    collection : str
    docs : list of LareqaDoc
    queries : list of LareqaQuery
    qrels : dict
        Full Multi qrels, ``{query_id: {doc_id: 1}}``.
    """

    def __init__(self, collection: str, parsed: Mapping[str, ParsedFile], langs: tuple[str, ...] | None = None):
        # ``langs`` lets a LAReQA-shaped collection that is not registered (the NTREX validation
        # benchmark) reuse the pool; registered collections take their languages from COLLECTIONS.
        if langs is None:
            if collection not in COLLECTIONS:
                raise ValueError(f"unknown collection {collection!r}; choices: {', '.join(COLLECTIONS)}")
            langs = COLLECTIONS[collection]
        self.langs: tuple[str, ...] = tuple(langs)
        missing = [l for l in langs if l not in parsed]
        if missing:
            raise ValueError(f"{collection}: no parsed file for {', '.join(missing)}")
        self.collection = collection
        self.docs: list[LareqaDoc] = []
        self.queries: list[LareqaQuery] = []
        self._doc_ranges: dict[str, tuple[int, int]] = {}
        by_squad: dict[str, dict[str, str]] = {}  # squad id -> {lang: answer doc id}
        for lang in langs:
            part = parsed[lang]
            start = len(self.docs)
            self.docs.extend(part.docs)
            self._doc_ranges[lang] = (start, len(self.docs))
            for squad_id, text in part.questions:
                self.queries.append(LareqaQuery(f'{squad_id}_{lang}', text, lang))
                by_squad.setdefault(squad_id, {})[lang] = part.answers[squad_id]
        self._squad_ids = [q.query_id[:-len(q.lang) - 1] for q in self.queries]
        self._answers = by_squad
        self.qrels: dict[str, dict[str, int]] = {
            q.query_id: {doc_id: 1 for doc_id in by_squad[sid].values()}
            for q, sid in zip(self.queries, self._squad_ids)}
        self._cache: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        return f'Pool({self.collection!r}, docs={len(self.docs)}, queries={len(self.queries)})'

    def _setting(self, setting: Setting | str) -> Setting:
        if isinstance(setting, str):
            setting = parse_dataset_id(setting)
        if setting.collection != self.collection:
            raise ValueError(f"setting {setting.dataset_id} is not part of the {self.collection} pool")
        return setting

    def doc_indices(self, setting: Setting | str) -> 'np.ndarray':
        """Indices into :attr:`docs` of the setting's corpus (read-only int64 array)."""
        import numpy as np

        setting = self._setting(setting)
        key = ('docs', setting.dataset_id)
        if key not in self._cache:
            parts = [np.arange(*self._doc_ranges[l], dtype=np.int64) for l in setting.doc_langs]
            out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            out.setflags(write=False)
            self._cache[key] = out
        return self._cache[key]

    def query_indices(self, setting: Setting | str) -> 'np.ndarray':
        """Indices into :attr:`queries` of the setting's queries: right language, >= 1 relevant doc."""
        import numpy as np

        setting = self._setting(setting)
        key = ('queries', setting.dataset_id)
        if key not in self._cache:
            doc_langs = set(setting.doc_langs)
            out = np.array([i for i, (q, sid) in enumerate(zip(self.queries, self._squad_ids))
                            if (setting.query_lang is None or q.lang == setting.query_lang)
                            and not doc_langs.isdisjoint(self._answers[sid])], dtype=np.int64)
            out.setflags(write=False)
            self._cache[key] = out
        return self._cache[key]

    def qrels_for(self, setting: Setting | str) -> dict[str, dict[str, int]]:
        """The setting's qrels: its queries, restricted to relevant docs of its corpus languages."""
        setting = self._setting(setting)
        doc_langs = set(setting.doc_langs)
        out: dict[str, dict[str, int]] = {}
        for i in self.query_indices(setting):
            answers = self._answers[self._squad_ids[i]]
            out[self.queries[i].query_id] = {doc_id: 1 for lang, doc_id in answers.items() if lang in doc_langs}
        return out


_POOLS: dict[tuple, Pool] = {}
_LOCK = threading.Lock()


def load_pool(collection: str, *, data_dir: str | os.PathLike | None = None,
              verify: bool | None = None, download: bool = True) -> Pool:
    """Parse every language file of ``collection`` once per process (cached) and return the pool.

    Parameters
    ----------
    collection : str
        ``'xquad-r'`` or ``'mlqa-r'``.
    data_dir : path, optional
        Directory holding ``{collection}/{lang}.json``; defaults to ``$PYSERINI_HYBRID_DATA``, then
        the ir_datasets cache (downloading the pinned files when online).
    verify : bool, optional
        md5-check the files against the pinned sums (default on; ``PYSERINI_HYBRID_VERIFY=0`` turns it
        off, for hand-made test data only).
    download : bool
        Allow downloading missing files into the ir_datasets cache (default on, unless
        ``PYSERINI_HYBRID_OFFLINE=1``).

    Raises
    ------
    LareqaDataError
        Missing, corrupt or malformed files (one line naming the file).
    """
    files = collection_files(collection, data_dir=data_dir, verify=verify, download=download)
    key = (collection,) + tuple((lang, str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
                                for lang, p in files.items())
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = Pool(collection, {lang: parse_file(p, lang) for lang, p in files.items()})
            _POOLS[key] = pool
    return pool


def clear_cache() -> None:
    """Forget every cached pool (tests that rewrite data files in place)."""
    with _LOCK:
        _POOLS.clear()
