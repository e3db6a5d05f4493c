"""Collections: docs, queries, qrels and named settings, whatever the source.

A :class:`Collection` holds documents (``doc_id``, ``text``, ``lang``), queries (``query_id``,
``text``, ``lang``), qrels (``{query_id: {doc_id: rel}}``, possibly empty) and named settings, each a
:class:`~pyserini_hybrid.datasets.Setting` that selects queries and documents. Search, exact
evaluation and the bias correction read only this interface (LAReQA's :class:`Pool` is one).

Adapters, all through :func:`load_collection`:

- a LAReQA id (``lareqa/xquad-r/en-de``): the pool, with every Mono / Cross / Multi setting;
- any other ir_datasets id (a Mr. TyDi, NeuCLIR or MIRACL id, or one registered by the user);
- a Pyserini JsonCollection folder (``*.jsonl`` / ``*.json`` files of ``{"id", "contents"}`` with an
  optional ``"lang"``) plus topics (TSV ``qid<TAB>text``, JSON, JSONL, or a Pyserini topics name) and
  optional TREC qrels.

A collection that is not LAReQA has one setting, named after the collection, with every query
against every document.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, NamedTuple, Sequence

from pyserini_hybrid.datasets._errors import CollectionError
from pyserini_hybrid.datasets._ids import PREFIX, Setting, list_settings, parse_dataset_id

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from pyserini_hybrid.datasets._lareqa import Pool

__all__ = ['COLLECTION_KIND', 'Collection', 'CollectionError', 'Doc', 'Query', 'from_ir_datasets', 'from_json_collection',
           'from_lareqa', 'is_lareqa_id', 'load_collection', 'read_json_collection', 'read_topics']

# The kind of a collection's one setting: every query against every document.
COLLECTION_KIND = 'all'
_ID_KEYS = ('id', 'docid', 'doc_id', '_id')
_TEXT_KEYS = ('contents', 'text', 'body')
_LANG_KEYS = ('lang', 'language')
_QID_KEYS = ('qid', 'query_id', 'id', '_id')
_QTEXT_KEYS = ('title', 'query', 'text', 'question', 'contents')


class Doc(NamedTuple):
    """A document; ``lang`` is an ISO 639-1 code or ``None`` when the source gives none."""
    doc_id: str
    text: str
    lang: str | None


class Query(NamedTuple):
    """A query (topic); ``lang`` as for :class:`Doc`."""
    query_id: str
    text: str
    lang: str | None


class Collection:
    """Docs, queries, qrels and named settings (the interface of LAReQA's :class:`Pool`).

    Parameters
    ----------
    name : str
        The collection's name (an ir_datasets id, a folder name); also its one setting's name.
    docs : sequence of Doc
    queries : sequence of Query
    qrels : mapping, optional
        ``{query_id: {doc_id: relevance}}``; empty when the collection has no judgements.

    Attributes
    ----------
    collection : str
        Same as ``name`` (the attribute LAReQA's pool has).
    docs, queries : list
    qrels : dict
    """

    def __init__(self, name: str, docs: Sequence[Doc], queries: Sequence[Query],
                 qrels: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.name = self.collection = name
        self.docs = list(docs)
        self.queries = list(queries)
        self.qrels: dict[str, dict[str, int]] = {q: dict(d) for q, d in (qrels or {}).items()}
        for what, ids in (('document', (d.doc_id for d in self.docs)), ('query', (q.query_id for q in self.queries))):
            seen: set[str] = set()
            for item_id in ids:
                if item_id in seen:
                    raise CollectionError(f"{name}: duplicate {what} id {item_id!r}")
                seen.add(item_id)
        langs = sorted({d.lang for d in self.docs if d.lang})
        self.langs: tuple[str, ...] = tuple(langs)
        self._setting = Setting(name, name, COLLECTION_KIND, None, self.langs)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.name!r}, docs={len(self.docs)}, queries={len(self.queries)})'

    # -- settings ---------------------------------------------------------------------------------

    @property
    def settings(self) -> list[Setting]:
        """Every named setting (one, named after the collection, unless a subclass says otherwise)."""
        return [self._setting]

    def setting(self, name: str | Setting | None = None) -> Setting:
        """The setting called ``name`` (default: the first one).

        Raises
        ------
        CollectionError
            When the collection has no such setting (one line listing up to five names).
        """
        if isinstance(name, Setting):
            name = name.dataset_id
        settings = self.settings
        if name is None:
            return settings[0]
        for s in settings:
            if s.dataset_id == name:
                return s
        names = ', '.join(s.dataset_id for s in settings[:5])
        raise CollectionError(f"collection {self.name} has no setting {name!r} (settings: {names}"
                              f"{' ...' if len(settings) > 5 else ''})")

    def doc_indices(self, setting: Setting | str | None = None) -> 'np.ndarray':
        """Indices into :attr:`docs` of the setting's corpus (here: every document)."""
        import numpy as np

        self.setting(setting)
        return np.arange(len(self.docs), dtype=np.int64)

    def query_indices(self, setting: Setting | str | None = None) -> 'np.ndarray':
        """Indices into :attr:`queries` of the setting's queries (here: every query)."""
        import numpy as np

        self.setting(setting)
        return np.arange(len(self.queries), dtype=np.int64)

    def with_languages(self, lang: str | None = None, candidates: Sequence[str] = ()) -> 'Collection':
        """This collection with every text's language filled in (BM25 analyzers and the bias correction
        need them): ``lang``, else the corpus's one language, else identified offline among ``candidates``
        (:func:`pyserini_hybrid.encoders.identify_languages`). Texts that name one keep it."""
        if all(x.lang for x in [*self.docs, *self.queries]):
            return self
        default = lang or (self.langs[0] if len(self.langs) == 1 else None)

        def fill(items):
            todo = [i for i, x in enumerate(items) if not x.lang]
            if default is not None:
                found = [default] * len(todo)
            else:
                from pyserini_hybrid.encoders import identify_languages
                found = identify_languages([items[i].text for i in todo], sorted(candidates))
            out = list(items)
            for i, value in zip(todo, found):
                out[i] = out[i]._replace(lang=value)
            return out

        return Collection(self.name, fill(self.docs), fill(self.queries), self.qrels)

    def qrels_for(self, setting: Setting | str | None = None) -> dict[str, dict[str, int]]:
        """The setting's qrels: judgements of its queries on documents of its corpus."""
        setting = self.setting(setting)
        docids = {self.docs[i].doc_id for i in self.doc_indices(setting)}
        out = {}
        for i in self.query_indices(setting):
            qid = self.queries[i].query_id
            judged = {d: r for d, r in self.qrels.get(qid, {}).items() if d in docids}
            if judged:
                out[qid] = judged
        return out


class LareqaCollection(Collection):
    """A LAReQA pool as a collection: its settings are the Mono / Cross / Multi ids."""

    def __init__(self, pool: 'Pool') -> None:
        self.pool = pool
        self.name = self.collection = pool.collection
        self.docs, self.queries, self.qrels, self.langs = pool.docs, pool.queries, pool.qrels, pool.langs

    @property
    def settings(self) -> list[Setting]:
        return list_settings(self.name)

    def setting(self, name: str | Setting | None = None) -> Setting:
        if name is None:
            return parse_dataset_id(f'{PREFIX}/{self.name}')
        if isinstance(name, Setting):
            return name
        try:
            setting = parse_dataset_id(name)
        except ValueError as exc:
            raise CollectionError(str(exc)) from None
        if setting.collection != self.name:
            raise CollectionError(f"setting {name} is not part of the {self.name} collection")
        return setting

    def doc_indices(self, setting=None):
        return self.pool.doc_indices(self.setting(setting))

    def query_indices(self, setting=None):
        return self.pool.query_indices(self.setting(setting))

    def qrels_for(self, setting=None):
        return self.pool.qrels_for(self.setting(setting))


# -- adapters --------------------------------------------------------------------------------------


def from_lareqa(dataset_id: str, **kwargs) -> LareqaCollection:
    """The LAReQA collection of ``dataset_id`` (any of its setting ids); ``kwargs`` go to ``load_pool``."""
    from pyserini_hybrid.datasets._lareqa import load_pool

    return LareqaCollection(load_pool(parse_dataset_id(dataset_id).collection, **kwargs))


def _first(record: Mapping, keys: Sequence[str]):
    for key in keys:
        if key in record and record[key] is not None:
            return record[key]
    return None


def from_ir_datasets(dataset_id: str) -> Collection:
    """Any ir_datasets id with docs (and, where it has them, queries and qrels) as a collection.

    Each item's text is its ``default_text()``; its language is its ``lang`` / ``language`` field,
    else the dataset's ``docs_lang()`` / ``queries_lang()``.

    Raises
    ------
    CollectionError
        An id ir_datasets does not know, or a dataset without documents.
    """
    import ir_datasets

    try:
        dataset = ir_datasets.load(dataset_id)
    except KeyError:
        raise CollectionError(f"unknown collection {dataset_id!r}: not a folder and not an ir_datasets id") from None
    if not dataset.has_docs():
        raise CollectionError(f"ir_datasets id {dataset_id} has no documents")
    docs_lang = dataset.docs_lang() if hasattr(dataset, 'docs_lang') else None

    def lang_of(item, default):
        value = getattr(item, 'lang', None) or getattr(item, 'language', None) or default
        return value if isinstance(value, str) else None

    docs = [Doc(str(d.doc_id), d.default_text(), lang_of(d, docs_lang)) for d in dataset.docs_iter()]
    queries: list[Query] = []
    if dataset.has_queries():
        queries_lang = dataset.queries_lang() if hasattr(dataset, 'queries_lang') else None
        queries = [Query(str(q.query_id), q.default_text(), lang_of(q, queries_lang)) for q in dataset.queries_iter()]
    qrels: dict[str, dict[str, int]] = {}
    if dataset.has_qrels():
        for qrel in dataset.qrels_iter():
            qrels.setdefault(str(qrel.query_id), {})[str(qrel.doc_id)] = int(qrel.relevance)
    return Collection(dataset_id, docs, queries, qrels)


def _json_records(path: Path) -> Iterable[tuple[str, Mapping]]:
    """``(where, record)`` of a JSONL file, or of a JSON file holding one object or a list of them."""
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError as exc:
        raise CollectionError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    stripped = text.lstrip()
    if path.suffix == '.json' and stripped[:1] in ('[', '{'):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if stripped[:1] == '[':
                raise CollectionError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        else:
            for i, record in enumerate(data if isinstance(data, list) else [data]):
                yield f'{path}[{i}]', record
            return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f'{path}:{lineno}', json.loads(line)
        except json.JSONDecodeError as exc:
            raise CollectionError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None


def read_json_collection(folder: str | os.PathLike) -> list[Doc]:
    """The documents of a Pyserini JsonCollection folder (or of one ``.jsonl`` / ``.json`` file).

    Files are read in name order; each record needs ``id`` and ``contents`` (``text`` is accepted
    too) and may carry ``lang`` (or ``language``).

    Raises
    ------
    CollectionError
        A missing folder, no JSON file in it, a record without id or text (file and line named).
    """
    folder = Path(folder)
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in ('.jsonl', '.json'))
        if not files:
            raise CollectionError(f"{folder}: no .jsonl or .json file (a Pyserini JsonCollection folder expected)")
    else:
        raise CollectionError(f"no such corpus folder or file: {folder}")
    docs = []
    for path in files:
        for where, record in _json_records(path):
            if not isinstance(record, dict):
                raise CollectionError(f"{where}: expected a JSON object, got {type(record).__name__}")
            doc_id, text = _first(record, _ID_KEYS), _first(record, _TEXT_KEYS)
            if doc_id is None or text is None:
                raise CollectionError(f"{where}: a document needs 'id' and 'contents'")
            lang = _first(record, _LANG_KEYS)
            docs.append(Doc(str(doc_id), str(text), str(lang) if lang else None))
    if not docs:
        raise CollectionError(f"{folder}: the corpus has no document")
    return docs


def read_topics(topics: str | os.PathLike, lang: str | None = None) -> list[Query]:
    """Topics from a file (TSV ``qid<TAB>text``, JSON, JSONL) or a Pyserini topics name.

    JSON is ``{qid: {"title": text}}`` (Pyserini's topics dict), ``{qid: text}`` or a list of
    records; a record names its id ``qid`` / ``query_id`` / ``id`` and its text ``title`` / ``query`` /
    ``text``, with an optional ``lang``. A name that is no file goes to ``pyserini.search.get_topics``
    (which starts the JVM and may need the network).

    Raises
    ------
    CollectionError
        A file that cannot be parsed (file and line named), a name Pyserini does not know, no topic.
    """
    path = Path(topics)
    queries: list[Query] = []
    if path.is_file():
        if path.suffix in ('.json', '.jsonl'):
            records = list(_json_records(path))
            if len(records) == 1 and isinstance(records[0][1], dict) and not _first(records[0][1], _QID_KEYS):
                records = [(f'{path}:{qid}', {'qid': qid, **(v if isinstance(v, dict) else {'title': v})})
                           for qid, v in records[0][1].items()]
            for where, record in records:
                if not isinstance(record, dict):
                    raise CollectionError(f"{where}: expected a JSON object, got {type(record).__name__}")
                qid, text = _first(record, _QID_KEYS), _first(record, _QTEXT_KEYS)
                if qid is None or text is None:
                    raise CollectionError(f"{where}: a topic needs an id ('qid') and a text ('title')")
                queries.append(Query(str(qid), str(text), _first(record, _LANG_KEYS) or lang))
        else:
            try:
                lines = path.read_text(encoding='utf-8').splitlines()
            except UnicodeDecodeError as exc:
                raise CollectionError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
            for lineno, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                parts = line.rstrip('\n').split('\t')
                if len(parts) < 2 or not parts[0].strip():
                    raise CollectionError(f"{path}:{lineno}: expected 'qid<TAB>text'")
                queries.append(Query(parts[0].strip(), parts[1], lang))
    elif path.suffix in ('.tsv', '.txt', '.json', '.jsonl') or os.sep in str(topics):
        raise CollectionError(f"no such topics file: {topics}")
    else:
        import pyserini_hybrid  # noqa: F401  (Java set-up before pyserini starts the JVM)
        from pyserini.search import get_topics

        try:
            named = get_topics(str(topics))
        except Exception as exc:  # noqa: BLE001 - pyserini raises ValueError or network errors
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CollectionError(f"topics {topics!r}: not a file and not a Pyserini topics name ({reason})") from None
        for qid, topic in named.items():
            text = topic.get('title') if isinstance(topic, dict) else topic
            queries.append(Query(str(qid), str(text), lang))
    if not queries:
        raise CollectionError(f"empty topics: {topics} has no query")
    return queries


def from_json_collection(folder: str | os.PathLike, topics: str | os.PathLike | None = None,
                         qrels: str | os.PathLike | None = None, *, lang: str | None = None,
                         name: str | None = None) -> Collection:
    """A Pyserini JsonCollection folder, its topics and optional qrels as a collection.

    Parameters
    ----------
    folder : path
        JsonCollection folder (or one ``.jsonl`` file).
    topics : path or str, optional
        Topics file or Pyserini topics name (a collection to encode needs none).
    qrels : path, optional
        TREC qrels (``qid 0 docid rel``).
    lang : str, optional
        Language of every document and query that does not name its own.
    name : str, optional
        The collection's name (default: the folder's name).
    """
    docs = read_json_collection(folder)
    if lang is not None:
        docs = [d if d.lang else d._replace(lang=lang) for d in docs]
    queries = read_topics(topics, lang) if topics is not None else []
    judged = _read_qrels_file(qrels) if qrels is not None else {}
    return Collection(name or Path(folder).name, docs, queries, judged)


def is_lareqa_id(source: str | os.PathLike) -> bool:
    """Whether ``source`` names a LAReQA collection or setting (``lareqa/...``, and no such path exists)."""
    text = os.fspath(source)
    return text.split('/')[0] == PREFIX and not Path(text).exists()


def load_collection(source: str | os.PathLike, topics: str | os.PathLike | None = None,
                    qrels: str | os.PathLike | None = None, *, lang: str | None = None) -> Collection:
    """The collection behind ``source``: a LAReQA id, a JsonCollection folder or an ir_datasets id.

    Parameters
    ----------
    source : path or str
        ``lareqa/...`` id, a folder (or ``.jsonl`` file) in Pyserini's JsonCollection format, or any
        id registered with ir_datasets.
    topics, qrels : optional
        For a folder: its topics (file or Pyserini name) and TREC qrels. For an id they replace the
        id's own queries / qrels when given.
    lang : str, optional
        Language of the folder's texts that name none.

    Raises
    ------
    CollectionError
        One line: an unknown id, a missing folder or file, a malformed record.
    """
    text = os.fspath(source)
    path = Path(text)
    if is_lareqa_id(text):
        if topics is not None or qrels is not None:
            raise CollectionError(f"{text}: a LAReQA id brings its own topics and qrels")
        return from_lareqa(text)
    if path.exists():
        return from_json_collection(path, topics, qrels, lang=lang)
    import ir_datasets

    if text not in ir_datasets.registry:
        if path.suffix in ('.json', '.jsonl') or text.startswith(('.', os.sep, '~')) or text.endswith(os.sep):
            raise CollectionError(f"no such corpus folder or file: {text}")
        raise CollectionError(f"unknown collection {text!r}: not a folder and not an ir_datasets id")
    collection = from_ir_datasets(text)
    if topics is not None:
        collection = Collection(collection.name, collection.docs, read_topics(topics, lang), collection.qrels)
    if qrels is not None:
        collection = Collection(collection.name, collection.docs, collection.queries,
                                _read_qrels_file(qrels))
    return collection


def _read_qrels_file(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    from pyserini_hybrid._trec import TrecFormatError, read_qrels

    try:
        return read_qrels(path)
    except (TrecFormatError, FileNotFoundError) as exc:
        raise CollectionError(str(exc)) from None
