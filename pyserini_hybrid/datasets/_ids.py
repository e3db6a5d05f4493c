"""The dataset id scheme: collections, settings and run file names (the one place these are defined).

Ids, as registered with ir_datasets:

- ``lareqa/{collection}``: Multi, every query against the pooled corpus of all languages;
- ``lareqa/{collection}/{l}``: Mono, queries and corpus in language ``l``;
- ``lareqa/{collection}/{ql}-{dl}``: Cross, queries in ``ql`` against the corpus of ``dl`` (``ql != dl``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ['COLLECTIONS', 'PREFIX', 'Setting', 'parse_dataset_id', 'list_settings', 'run_filename',
           'dataset_id_from_run_filename']

PREFIX = 'lareqa'
COLLECTIONS: dict[str, tuple[str, ...]] = {
    'xquad-r': ('ar', 'de', 'el', 'en', 'es', 'hi', 'ru', 'th', 'tr', 'vi', 'zh'),
    'mlqa-r': ('ar', 'de', 'en', 'es', 'hi', 'vi', 'zh'),
}
_RUN_SUFFIX = '.trec'


@dataclass(frozen=True)
class Setting:
    """One evaluation setting of a LAReQA collection.

    Attributes
    ----------
    dataset_id : str
        The ir_datasets id, e.g. ``'lareqa/xquad-r/en-de'``.
    collection : str
        ``'xquad-r'`` or ``'mlqa-r'``.
    kind : str
        ``'mono'``, ``'cross'`` or ``'multi'``.
    query_lang : str or None
        Language of the queries; ``None`` for Multi (queries of every language).
    doc_langs : tuple of str
        Languages whose candidates make up the corpus.
    """
    dataset_id: str
    collection: str
    kind: str
    query_lang: str | None
    doc_langs: tuple[str, ...]


def _valid_choices() -> str:
    parts = [f"{PREFIX}/{c}[/{{lang}}|/{{query_lang}}-{{doc_lang}}] with lang in {','.join(langs)}"
             for c, langs in COLLECTIONS.items()]
    return '; '.join(parts)


def parse_dataset_id(dataset_id: str) -> Setting:
    """Parse a LAReQA dataset id into its :class:`Setting`.

    Parameters
    ----------
    dataset_id : str
        ``'lareqa/xquad-r'`` (Multi), ``'lareqa/xquad-r/en'`` (Mono) or ``'lareqa/xquad-r/en-de'`` (Cross).

    Raises
    ------
    ValueError
        One line naming the bad id and listing the valid choices.
    """
    if not isinstance(dataset_id, str):
        raise ValueError(f"dataset id must be a string, got {dataset_id!r}")
    parts = dataset_id.split('/')
    if len(parts) not in (2, 3) or parts[0] != PREFIX or parts[1] not in COLLECTIONS:
        raise ValueError(f"unknown dataset id {dataset_id!r}; valid ids: {_valid_choices()}")
    collection = parts[1]
    langs = COLLECTIONS[collection]
    if len(parts) == 2:
        return Setting(dataset_id, collection, 'multi', None, langs)
    tail = parts[2]
    pair = tail.split('-')
    if len(pair) == 1 and tail in langs:
        return Setting(dataset_id, collection, 'mono', tail, (tail,))
    if len(pair) == 2 and pair[0] in langs and pair[1] in langs:
        if pair[0] == pair[1]:
            raise ValueError(f"unknown dataset id {dataset_id!r}: a Cross setting needs two different "
                             f"languages; the Mono id is {PREFIX}/{collection}/{pair[0]}")
        return Setting(dataset_id, collection, 'cross', pair[0], (pair[1],))
    bad = [p for p in pair if p not in langs]
    raise ValueError(f"unknown dataset id {dataset_id!r}: language {'/'.join(bad) or tail!r} is not in "
                     f"{collection} (languages: {','.join(langs)}); valid ids: {_valid_choices()}")


def list_settings(collection: str) -> list[Setting]:
    """Every setting of ``collection``: Mono (sorted), Cross (sorted by query then doc language), Multi last.

    122 settings for XQuAD-R (11 + 110 + 1) and 50 for MLQA-R (7 + 42 + 1).
    """
    if collection not in COLLECTIONS:
        raise ValueError(f"unknown collection {collection!r}; choices: {', '.join(COLLECTIONS)}")
    langs = sorted(COLLECTIONS[collection])
    ids = [f'{PREFIX}/{collection}/{l}' for l in langs]
    ids += [f'{PREFIX}/{collection}/{q}-{d}' for q in langs for d in langs if q != d]
    ids.append(f'{PREFIX}/{collection}')
    return [parse_dataset_id(i) for i in ids]


def run_filename(dataset_id: str) -> str:
    """File name of a setting's TREC run: ``'lareqa/xquad-r/en-de'`` -> ``'lareqa.xquad-r.en-de.trec'``."""
    setting = parse_dataset_id(dataset_id)
    return setting.dataset_id.replace('/', '.') + _RUN_SUFFIX


def dataset_id_from_run_filename(name: str | os.PathLike) -> str:
    """Inverse of :func:`run_filename`; accepts a bare name or a path.

    Raises
    ------
    ValueError
        When the name is not of the form ``lareqa.{collection}[.{setting}].trec``.
    """
    base = os.path.basename(os.fspath(name))
    if not base.endswith(_RUN_SUFFIX):
        raise ValueError(f"run file name {base!r} does not end in {_RUN_SUFFIX!r} "
                         f"(expected e.g. {PREFIX}.xquad-r.en-de{_RUN_SUFFIX})")
    dataset_id = base[:-len(_RUN_SUFFIX)].replace('.', '/')
    try:
        parse_dataset_id(dataset_id)
    except ValueError as exc:
        raise ValueError(f"run file name {base!r} names no LAReQA setting: {exc}") from None
    return dataset_id
