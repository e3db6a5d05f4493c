"""Instruction data as English retrieval pairs, and E5-instruct task descriptions for queries.

Readers turn every supported format into Dolly-style records (``instruction``, ``context``,
``response``, ``category``); :func:`to_pairs` is the one place where a record becomes a retrieval
pair: query = instruction [+ ``"\\n"`` + context], positive = response, language ``'en'``.

Formats:

- **databricks-dolly-15k** (``instruction``, ``context``, ``response``, ``category``), by hub name
  through ``datasets.load_dataset`` or as a local JSONL / JSON file;
- **self-instruct** (``seed_tasks.jsonl``, ``user_oriented_instructions.jsonl``): ``instruction`` plus
  ``instances`` of ``{input, output}``; the category is the task ``name`` (seed tasks) or the
  ``motivation_app`` (user-oriented tasks);
- **T0 / P3** (``t0/*.jsonl``): ``prompt`` / ``completion`` pairs; the category is the file's
  template name (``ag_news_classify``, ...), the ``<|endoftext|>`` trailer is dropped.

Offline, ``../shared/data/train/instructions`` (self-instruct + T0) stands in for Dolly, which is
not obtainable here; reports must say which one a model was trained on.

Dropped records: an empty instruction or response, a response identical to its query or shorter
than ``min_response_chars``, and repeats. Repeats are judged on normalised text (NFKC, case,
whitespace) and separately for queries and positives, first occurrence wins: with in-batch
negatives a text that is the positive of two queries is a false negative for one of them, and a
response shared by many records is a class label ("Yes", "positive") rather than a passage.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from pyserini_hybrid.encoders._tasks import INSTRUCT_TEMPLATE, SEARCH_TASK
from pyserini_hybrid.train._data import PairTable, TrainDataError, default_train_dir, normalize_text

__all__ = ['DOLLY_HUB_ID', 'INSTRUCTION_FORMATS', 'OFFLINE_SOURCES', 'SOURCE_GROUPS', 'INSTRUCT_TEMPLATE',
           'SEARCH_TASK', 'TASK_INSTRUCTIONS', 'InstructionDataError', 'InstructionRecord', 'InstructionPair',
           'PairStats', 'read_dolly', 'read_self_instruct', 'read_t0', 'read_instructions', 'to_pairs',
           'load_instruction_pairs', 'instructions', 'task_for', 'instruct_query']

DOLLY_HUB_ID = 'databricks/databricks-dolly-15k'
INSTRUCTION_FORMATS = ('dolly', 'self-instruct', 't0')
_EOT = '<|endoftext|>'

# Named offline sources, relative to the training data folder (../shared/data/train).
OFFLINE_SOURCES: dict[str, str] = {
    'self-instruct-seed': 'instructions/seed_tasks.jsonl',
    'self-instruct-user': 'instructions/user_oriented_instructions.jsonl',
    't0': 'instructions/t0',
}
SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    'self-instruct': ('self-instruct-seed', 'self-instruct-user'),
    # the whole offline stand-in for Dolly-style data
    'offline': ('self-instruct-seed', 'self-instruct-user', 't0'),
}

# INSTRUCT_TEMPLATE and SEARCH_TASK live in pyserini_hybrid.encoders._tasks (search and eval read them
# from there); re-exported here for training code.
# One task description per training source (keys: pyserini_hybrid.train ADAPTERS names).
TASK_INSTRUCTIONS: dict[str, str] = {
    'xnli': 'Given a statement, retrieve a sentence that implies it',
    'pawsx': 'Given a sentence, retrieve a paraphrase of it',
    'ntrex': 'Given a sentence from a news article, retrieve the sentence that follows it',
    'ntrex/translation': 'Given a sentence, retrieve its translation',
    'tatoeba': 'Given a sentence, retrieve its translation',
    'tico': 'Given a sentence, retrieve its translation',
    'tydiqa': SEARCH_TASK,
    'arcd': SEARCH_TASK,
    'cmrc2018': SEARCH_TASK,
    'iapp': SEARCH_TASK,
    'zalo': SEARCH_TASK,
    'wikiqa': SEARCH_TASK,
    'xglue-qam': 'Given a web search query, retrieve a passage that answers it',
    'instructions': 'Given an instruction, retrieve the response that fulfils it',
    'lareqa': SEARCH_TASK,
}


class InstructionDataError(TrainDataError):
    """Unreadable or malformed instruction data; the message names the file (and line) or hub id."""


class InstructionRecord(NamedTuple):
    """One Dolly-style record; ``origin`` is ``file:line`` (or ``hub-id[row]``) for messages."""
    instruction: str
    context: str
    response: str
    category: str
    origin: str = ''


class InstructionPair(NamedTuple):
    """A retrieval pair made from one record."""
    query: str
    positive: str
    category: str
    lang: str = 'en'
    origin: str = ''


@dataclass
class PairStats:
    """What :func:`to_pairs` kept and dropped, and why."""
    read: int = 0
    empty: int = 0
    degenerate: int = 0
    duplicate: int = 0
    kept: int = 0
    categories: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {'read': self.read, 'empty': self.empty, 'degenerate': self.degenerate,
                'duplicate': self.duplicate, 'kept': self.kept, 'categories': dict(self.categories)}


# ----------------------------------------------------------------------------------------------
# low-level file reading


def _objects(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line or record number, object)`` from a JSON Lines file or a JSON array file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InstructionDataError(f"missing instruction file {path}") from None
    except OSError as exc:
        raise InstructionDataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        raise InstructionDataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if text.lstrip().startswith('['):
        # a JSON array (Dolly copies saved with json.dump): positions are record numbers
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InstructionDataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        for i, obj in enumerate(data, 1):
            yield i, obj
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InstructionDataError(f"{path}:{lineno}: invalid JSON line ({exc.msg})") from None


def _text(obj: Any, key: str, where: str, *, required: bool = True) -> str:
    if not isinstance(obj, dict):
        raise InstructionDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        if required:
            raise InstructionDataError(f"{where}: missing field {key!r}")
        return ''
    value = obj[key]
    if not isinstance(value, str):
        raise InstructionDataError(f"{where}: field {key!r} should be a string, got {type(value).__name__}")
    return value


def _detect_format(obj: Any, where: str) -> str:
    if isinstance(obj, dict):
        if 'prompt' in obj and 'completion' in obj:
            return 't0'
        if 'instances' in obj:
            return 'self-instruct'
        if 'instruction' in obj and 'response' in obj:
            return 'dolly'
    keys = ', '.join(sorted(obj)) if isinstance(obj, dict) else type(obj).__name__
    raise InstructionDataError(
        f"{where}: unknown instruction format (fields: {keys}); expected Dolly (instruction, context, response, "
        f"category), self-instruct (instruction, instances) or T0 (prompt, completion)")


# ----------------------------------------------------------------------------------------------
# readers


def _dolly_record(obj: Any, where: str) -> InstructionRecord:
    return InstructionRecord(instruction=_text(obj, 'instruction', where),
                             context=_text(obj, 'context', where, required=False),
                             response=_text(obj, 'response', where),
                             category=_text(obj, 'category', where, required=False) or 'none',
                             origin=where)


def read_dolly(source: str | os.PathLike = DOLLY_HUB_ID, *, split: str = 'train') -> list[InstructionRecord]:
    """databricks-dolly-15k (or any file with its fields) as records.

    Parameters
    ----------
    source : str or path
        A local ``.jsonl`` / ``.json`` file, or a Hugging Face hub dataset id (default
        ``databricks/databricks-dolly-15k``), loaded with ``datasets.load_dataset``.
    split : str
        Hub split.

    Raises
    ------
    InstructionDataError
        A malformed line or a missing field (file and line named), or a hub dataset that cannot be
        reached (offline: pass a local path instead).
    """
    path = Path(source)
    if path.exists():
        return [_dolly_record(obj, f'{path}:{n}') for n, obj in _objects(path)]
    name = os.fspath(source)
    try:
        import datasets

        ds = datasets.load_dataset(name, split=split)
    except Exception as exc:  # datasets raises ConnectionError, FileNotFoundError, ValueError, ...
        reason = ' '.join(str(exc).split())[:200]
        raise InstructionDataError(
            f"cannot load instruction dataset {name!r} from the Hugging Face hub ({type(exc).__name__}: {reason}); "
            f"offline, pass a local JSONL/JSON file with its fields instead") from None
    return [_dolly_record(obj, f'{name}[{i}]') for i, obj in enumerate(ds)]


def read_self_instruct(path: str | os.PathLike) -> list[InstructionRecord]:
    """self-instruct task files: one record per instance (instruction, instance input, output).

    The category is the task ``name`` (``seed_tasks.jsonl``), else its ``motivation_app``
    (``user_oriented_instructions.jsonl``), else ``'none'``.
    """
    path = Path(path)
    out: list[InstructionRecord] = []
    for n, obj in _objects(path):
        where = f'{path}:{n}'
        instruction = _text(obj, 'instruction', where)
        instances = obj.get('instances')
        if not isinstance(instances, list):
            raise InstructionDataError(f"{where}: field 'instances' should be a list of {{input, output}} objects")
        category = (_text(obj, 'name', where, required=False) or _text(obj, 'motivation_app', where, required=False)
                    or 'none')
        for k, inst in enumerate(instances):
            iwhere = f'{where}: instances[{k}]'
            out.append(InstructionRecord(instruction, _text(inst, 'input', iwhere, required=False),
                                         _text(inst, 'output', iwhere), category, where))
    return out


def read_t0(path: str | os.PathLike) -> list[InstructionRecord]:
    """T0 / P3 prompt-completion files (one file or a folder of ``*.jsonl``); category = file stem."""
    path = Path(path)
    files = sorted(path.glob('*.jsonl')) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise InstructionDataError(f"{path}: no *.jsonl files")
    out: list[InstructionRecord] = []
    for file in files:
        for n, obj in _objects(file):
            where = f'{file}:{n}'
            response = _text(obj, 'completion', where)
            if response.endswith(_EOT):
                response = response[:-len(_EOT)]
            out.append(InstructionRecord(_text(obj, 'prompt', where), '', response, file.stem, where))
    return out


_READERS = {'dolly': read_dolly, 'self-instruct': read_self_instruct, 't0': read_t0}


def read_instructions(source: str | os.PathLike, *, train_dir: str | os.PathLike | None = None,
                      format: str | None = None) -> list[InstructionRecord]:
    """Records of one instruction source.

    Parameters
    ----------
    source : str or path
        ``'dolly'`` (the hub dataset), a named offline source (:data:`OFFLINE_SOURCES`) or group
        (:data:`SOURCE_GROUPS`), a local file or folder, or a hub dataset id in Dolly format.
    train_dir : path, optional
        Folder of the offline sources (default: :func:`pyserini_hybrid.train._data.default_train_dir`).
    format : str, optional
        ``'dolly'``, ``'self-instruct'`` or ``'t0'`` for a local path; detected from the first
        record when omitted (a folder is read as T0).
    """
    if format is not None and format not in INSTRUCTION_FORMATS:
        raise InstructionDataError(f"unknown instruction format {format!r}; choices: {', '.join(INSTRUCTION_FORMATS)}")
    key = os.fspath(source)
    if key in SOURCE_GROUPS:
        return [r for name in SOURCE_GROUPS[key] for r in read_instructions(name, train_dir=train_dir)]
    if key in OFFLINE_SOURCES:
        base = Path(train_dir) if train_dir is not None else default_train_dir()
        path = base / OFFLINE_SOURCES[key]
        if not path.exists():
            raise InstructionDataError(f"missing instruction data {path} (source {key!r}); see "
                                       f"../shared/data/README.md")
        return read_t0(path) if key == 't0' else read_self_instruct(path)
    if key == 'dolly':
        return read_dolly(DOLLY_HUB_ID)
    path = Path(key).expanduser()
    if path.is_dir():
        return read_t0(path) if format in (None, 't0') else _READERS[format](path)
    if path.is_file():
        if format is None:
            first = next(_objects(path), None)
            if first is None:
                raise InstructionDataError(f"{path}: no records")
            format = _detect_format(first[1], f'{path}:{first[0]}')
        return _READERS[format](path)
    if key.count('/') == 1 and not key.startswith(('.', '/', '~')) and not path.suffix:
        return read_dolly(key)  # looks like a hub id: owner/name
    names = ', '.join(['dolly', *OFFLINE_SOURCES, *SOURCE_GROUPS])
    raise InstructionDataError(f"instruction source {key!r} is not a file, a folder, a hub id or one of {names}")


# ----------------------------------------------------------------------------------------------
# records -> pairs


def to_pairs(records: Iterable[InstructionRecord], *, min_response_chars: int = 2,
             lang: str = 'en') -> tuple[list[InstructionPair], PairStats]:
    """Retrieval pairs from records, dropping empty, degenerate and repeated ones (see module doc).

    Returns
    -------
    (pairs, stats)
        Pairs in record order, and counts of what was read, dropped (by reason) and kept.
    """
    stats = PairStats()
    seen_queries: set[str] = set()
    seen_positives: set[str] = set()
    pairs: list[InstructionPair] = []
    for rec in records:
        stats.read += 1
        instruction, context, response = rec.instruction.strip(), rec.context.strip(), rec.response.strip()
        if not instruction or not response:
            stats.empty += 1
            continue
        query = f'{instruction}\n{context}' if context else instruction
        qkey, pkey = normalize_text(query), normalize_text(response)
        if len(response) < min_response_chars or qkey == pkey:
            stats.degenerate += 1
            continue
        if qkey in seen_queries or pkey in seen_positives:
            stats.duplicate += 1
            continue
        seen_queries.add(qkey)
        seen_positives.add(pkey)
        pairs.append(InstructionPair(query, response, rec.category, lang, rec.origin))
        stats.categories[rec.category] = stats.categories.get(rec.category, 0) + 1
    stats.kept = len(pairs)
    return pairs, stats


def load_instruction_pairs(sources: Sequence[str] | str = ('offline',), *,
                           train_dir: str | os.PathLike | None = None, min_response_chars: int = 2,
                           max_pairs: int = 0, sample_seed: int = 0) -> tuple[list[InstructionPair], PairStats]:
    """Read ``sources`` (see :func:`read_instructions`), convert to pairs, dedupe across sources.

    ``max_pairs > 0`` keeps a seeded random subset of that size (in source order), so a budget can
    cap the 50k T0 pairs without changing which pairs every seed of an experiment sees.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    records = [r for s in sources for r in read_instructions(s, train_dir=train_dir)]
    pairs, stats = to_pairs(records, min_response_chars=min_response_chars)
    if max_pairs and len(pairs) > max_pairs:
        import numpy as np

        keep = np.sort(np.random.default_rng(sample_seed).permutation(len(pairs))[:max_pairs])
        pairs = [pairs[i] for i in keep]
        stats.categories = {}
        for p in pairs:
            stats.categories[p.category] = stats.categories.get(p.category, 0) + 1
        stats.kept = len(pairs)
    return pairs, stats


def instructions(train_dir: Path, langs: Sequence[str], *, sources: list[str] = ('offline',),
                 min_response_chars: int = 2, max_pairs: int = 0, sample_seed: int = 0):
    """Training adapter (``ADAPTERS['instructions']``): instruction pairs as an English-only
    :class:`~pyserini_hybrid.train._data.PairTable` (mono rows only).

    ``sources`` are names or paths as :func:`read_instructions` takes them (``'dolly'``,
    ``'offline'``, a Dolly JSONL file, ...). The table's ``meta`` keeps each item's category and the
    drop counts. Without ``'en'`` in ``langs`` the table is empty.
    """
    import numpy as np

    if isinstance(sources, str):
        sources = [sources]
    pairs: list[InstructionPair] = []
    stats = PairStats()
    if 'en' in langs:
        pairs, stats = load_instruction_pairs(list(sources), train_dir=train_dir,
                                              min_response_chars=min_response_chars, max_pairs=max_pairs,
                                              sample_seed=sample_seed)
    queries = np.empty((len(pairs), 1), dtype=object)
    positives = np.empty((len(pairs), 1), dtype=object)
    for i, p in enumerate(pairs):
        queries[i, 0], positives[i, 0] = p.query, p.positive
    table = PairTable(name='instructions', langs=('en',), queries=queries, positives=positives)
    table.meta.update(categories=[p.category for p in pairs], stats=stats.to_dict(), sources=list(sources))
    return table


# ----------------------------------------------------------------------------------------------
# E5-instruct task instructions


def task_for(source: str, options: dict | None = None) -> str:
    """Task description for a training source (or ``'lareqa'`` at search time).

    ``options`` are the source's adapter options; they matter where one corpus gives different
    tasks (NTREX translation vs next-sentence pairs).
    """
    if source == 'ntrex' and (options or {}).get('mode') == 'translation':
        return TASK_INSTRUCTIONS['ntrex/translation']
    try:
        return TASK_INSTRUCTIONS[source]
    except KeyError:
        raise KeyError(f"no task instruction for source {source!r}; known: {', '.join(sorted(TASK_INSTRUCTIONS))}") \
            from None


def instruct_query(query: str, task: str, template: str = INSTRUCT_TEMPLATE) -> str:
    """``'Instruct: {task}\\nQuery: {query}'`` (E5-instruct)."""
    return template.format(task=task) + query

