"""NTREX-128 on the training side: the file reader and a LAReQA-shaped validation benchmark.

Model selection (recipes, bias corrections, checkpoints) must never look at XQuAD-R or MLQA-R. This
module builds a retrieval benchmark of the same shape from training-side data: a fixed quarter of the
NTREX news *documents* (chosen by a hash of the document id, so the split does not depend on file
order) is held out of training (``pyserini_hybrid.train`` drops them) and turned into

- queries: the sentence at an even position ``2k`` of a held-out document, in each of 11 languages;
- candidates: the sentences at odd positions ``2k + 1``, in each of 11 languages;
- relevant: a query's next sentence, in every language (11 per query in Multi, as in XQuAD-R).

Query sentences never appear among the candidates, so no query can be answered by its own
translation. Settings are Mono (11), Cross (110 ordered pairs) and Multi, exactly as LAReQA's.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

from pyserini_hybrid.datasets._ids import COLLECTIONS, Setting
from pyserini_hybrid.datasets._lareqa import LareqaDoc, ParsedFile, Pool

__all__ = ['TRAIN_DATA_ENV', 'NTREX_FILES', 'VALIDATION_COLLECTION', 'VALIDATION_LANGUAGES', 'NtrexError',
           'default_train_dir', 'read_ntrex', 'is_validation_document', 'load_validation_pool',
           'validation_settings']

TRAIN_DATA_ENV = 'PYSERINI_HYBRID_TRAIN_DATA'
NTREX_FILES = {'en': 'newstest2019-src.eng.txt', 'ar': 'newstest2019-ref.arb.txt', 'de': 'newstest2019-ref.deu.txt',
               'el': 'newstest2019-ref.ell.txt', 'es': 'newstest2019-ref.spa.txt', 'hi': 'newstest2019-ref.hin.txt',
               'ru': 'newstest2019-ref.rus.txt', 'th': 'newstest2019-ref.tha.txt', 'tr': 'newstest2019-ref.tur.txt',
               'vi': 'newstest2019-ref.vie.txt', 'zh': 'newstest2019-ref.zho-CN.txt'}
VALIDATION_COLLECTION = 'ntrex-val'
VALIDATION_LANGUAGES = COLLECTIONS['xquad-r']   # the validation benchmark mirrors XQuAD-R's languages
# One document in VALIDATION_MODULUS is held out: 30 of NTREX's 123 documents, 429 of 1,997 lines.
VALIDATION_MODULUS = 4


class NtrexError(ValueError):
    """A missing or malformed NTREX file; the message names the file."""


def default_train_dir() -> Path:
    """``$PYSERINI_HYBRID_TRAIN_DATA``, else ``../shared/data/train`` beside the repository."""
    env = os.environ.get(TRAIN_DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'train'


def _lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NtrexError(f"missing NTREX file {path} (set {TRAIN_DATA_ENV}; see ../shared/data/README.md)") from None
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise NtrexError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    return [line.rstrip('\r') for line in lines]


def read_ntrex(folder: str | os.PathLike, langs: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Document id of every line, and the line-aligned sentences of each language present.

    Raises
    ------
    NtrexError
        A missing ``DOCUMENT_IDS.tsv`` or a language file whose line count differs from it.
    """
    folder = Path(folder)
    docs = _lines(folder / 'DOCUMENT_IDS.tsv')
    text: dict[str, list[str]] = {}
    for lang in langs:
        path = folder / NTREX_FILES.get(lang, '')
        if lang in NTREX_FILES and path.is_file():
            lines = _lines(path)
            if len(lines) != len(docs):
                raise NtrexError(f"{path}: {len(lines)} lines, expected {len(docs)} (line-aligned with DOCUMENT_IDS.tsv)")
            text[lang] = lines
    return docs, text


def is_validation_document(doc_id: str) -> bool:
    """Whether an NTREX document belongs to the held-out validation quarter (never trained on)."""
    return int(hashlib.sha256(doc_id.encode('utf-8')).hexdigest(), 16) % VALIDATION_MODULUS == 0


def load_validation_pool(train_dir: str | os.PathLike | None = None,
                         langs: Sequence[str] = VALIDATION_LANGUAGES) -> Pool:
    """The NTREX next-sentence validation benchmark as a :class:`~pyserini_hybrid.datasets.Pool`.

    Parameters
    ----------
    train_dir
        Folder holding ``ntrex/`` (default :func:`default_train_dir`).
    langs
        Languages to include; each needs its NTREX file.
    """
    folder = Path(train_dir or default_train_dir()) / 'ntrex'
    doc_ids, text = read_ntrex(folder, langs)
    missing = [l for l in langs if l not in text]
    if missing:
        raise NtrexError(f"{folder}: no NTREX file for {', '.join(missing)}")
    pairs: list[tuple[int, int]] = []   # (query line, answer line)
    i = 0
    while i + 1 < len(doc_ids):
        if doc_ids[i] == doc_ids[i + 1] and is_validation_document(doc_ids[i]) and \
                all(text[l][i].strip() and text[l][i + 1].strip() for l in langs):
            pairs.append((i, i + 1))
            i += 2
        else:
            i += 1
    parsed = {}
    for lang in langs:
        docs = [LareqaDoc(f'{lang}_{a}', text[lang][a].strip(), lang, '') for _, a in pairs]
        questions = [(f'ntrex{q}', text[lang][q].strip()) for q, _ in pairs]
        answers = {f'ntrex{q}': f'{lang}_{a}' for q, a in pairs}
        parsed[lang] = ParsedFile(lang, docs, questions, answers)
    return Pool(VALIDATION_COLLECTION, parsed, langs=tuple(langs))


def validation_settings(pool: Pool) -> list[Setting]:
    """Mono, Cross and Multi settings of the validation pool, ordered as LAReQA's."""
    langs = sorted(pool.langs)
    name = pool.collection
    out = [Setting(f'{name}/{l}', name, 'mono', l, (l,)) for l in langs]
    out += [Setting(f'{name}/{q}-{d}', name, 'cross', q, (d,)) for q in langs for d in langs if q != d]
    out.append(Setting(name, name, 'multi', None, tuple(pool.langs)))
    return out
