"""Corpus adapters: ``../shared/data/train``-style folders to :class:`PairTable` source datasets.

Every adapter is a function ``adapter(train_dir, langs, *, options...) -> PairTable``: the data
folder, the wanted languages, and keyword-only options that a recipe's ``data`` entry may set
(their annotations and defaults are what :func:`adapter_options` checks recipes against).

To add a corpus, write its adapter here (or in a module of its own, as ``instructions``) and add it
to :data:`ADAPTERS`, the one registry: recipes, ``load_source`` and the CLI read it.
"""
from __future__ import annotations

import inspect
import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pyserini_hybrid.datasets._ntrex import TRAIN_DATA_ENV, NtrexError, is_validation_document, read_ntrex
from pyserini_hybrid.train._data import PairTable, TrainDataError, stable_hash, table_from_rows
from pyserini_hybrid.train._files import need_file, read_json, read_lines, read_tsv
from pyserini_hybrid.train._instructions import instructions
from pyserini_hybrid.train._sentences import answer_sentence

__all__ = ['ADAPTERS', 'adapter_options', 'load_source', 'squad_pairs']


def squad_pairs(data: Any, path: Path, lang: str, passages: bool = False) -> list[dict[str, tuple]]:
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
            labels = [f[2] for f in read_tsv(train_dir / 'xnli' / 'dev-en.tsv', 'xnli', 3)]
        else:
            labels = [f[2] for f in read_tsv(train_dir / 'xglue-de' / 'xnli-test.tsv', 'xglue-de', 3)]
        keep = [i for i, lab in enumerate(labels) if lab == label]
        block = [dict() for _ in keep]
        for lang in langs:
            path = train_dir / 'xnli' / f'{split}-{lang}.tsv'
            if not path.is_file():
                continue
            rows = read_tsv(path, 'xnli', (2, 3))
            if len(rows) != len(labels):
                raise TrainDataError(f"{path}: {len(rows)} lines, expected {len(labels)} (line-aligned)")
            for slot, i in zip(block, keep):
                slot[lang] = (rows[i][1], rows[i][0])
        items.extend(block)
    return table_from_rows('xnli', langs, items)


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
        table = table_from_rows('ntrex', langs, items, same_text=True)
    else:
        items = [{l: (t[i], t[i + 1]) for l, t in text.items()}
                 for i in range(len(docs) - 1) if docs[i] == docs[i + 1] and keep[i]]
        table = table_from_rows('ntrex', langs, items)
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
            xs = read_lines(Path(f'{base}.{code}'), 'tatoeba')
            ens = read_lines(Path(f'{base}.eng'), 'tatoeba')
            if len(xs) != len(ens):
                raise TrainDataError(f"{base}.{code}: {len(xs)} lines but {base}.eng has {len(ens)}")
            items.extend({lang: (x, x), 'en': (e, e)} for x, e in zip(xs, ens))
    return table_from_rows('tatoeba', langs, items, same_text=True)


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
    return table_from_rows('tico', langs, list(by_id.values()), same_text=True)


def pawsx(train_dir: Path, langs: Sequence[str]) -> PairTable:
    """PAWS-X dev paraphrase pairs (label 1), line-aligned across de/en/es/zh (mono and cross rows).

    The test files carry no labels (and PAWS pairs are often adversarial non-paraphrases): unused.
    """
    en = read_tsv(train_dir / 'pawsx' / 'dev-en.tsv', 'pawsx', 3)
    keep = [i for i, f in enumerate(en) if f[2].strip() == '1']
    items: list[dict[str, tuple]] = [dict() for _ in keep]
    for lang in langs:
        path = train_dir / 'pawsx' / f'dev-{lang}.tsv'
        if not path.is_file():
            continue
        rows = read_tsv(path, 'pawsx', 3)
        if len(rows) != len(en):
            raise TrainDataError(f"{path}: {len(rows)} lines, expected {len(en)} (line-aligned)")
        for slot, i in zip(items, keep):
            slot[lang] = (rows[i][0], rows[i][1])
    return table_from_rows('pawsx', langs, items)


def tydiqa(train_dir: Path, langs: Sequence[str], *, dev_passages: bool = True) -> PairTable:
    """TyDi QA GoldP: English train question -> answer sentence; with ``dev_passages`` also the
    en/ar/ru dev questions -> their passage (answers are blanked there). Mono rows only."""
    items: list[dict[str, tuple]] = []
    folder = train_dir / 'tydiqa'
    if 'en' in langs:
        path = folder / 'tydiqa.goldp.en.train.json'
        items += squad_pairs(read_json(path, 'tydiqa'), path, 'en')
    if dev_passages:
        for lang in ('ar', 'en', 'ru'):
            path = folder / f'tydiqa.goldp.{lang}.dev.json'
            if lang in langs and path.is_file():
                items += squad_pairs(read_json(path, 'tydiqa'), path, lang, passages=True)
    return table_from_rows('tydiqa', langs, items)


def _squad_corpus(name: str, lang: str, files: Sequence[str]) -> Callable[..., PairTable]:
    def adapter(train_dir: Path, langs: Sequence[str]) -> PairTable:
        items: list[dict[str, tuple]] = []
        if lang in langs:
            for file in files:
                path = train_dir / name / file
                items += squad_pairs(read_json(path, name), path, lang)
        return table_from_rows(name, langs, items)

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
        path = need_file(train_dir / 'iapp' / 'data.zip', 'iapp')
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
    return table_from_rows('iapp', langs, items)


def wikiqa(train_dir: Path, langs: Sequence[str], *, splits: list[str] = ('train', 'dev', 'test'),
           hard_negatives: bool = True) -> PairTable:
    """WikiQA (English): question -> answer sentence; the same page's other sentences are hard negatives.

    With ``hard_negatives``, each item keeps one negative (questions without one are dropped); the
    choice is fixed per item so runs are reproducible.
    """
    items: list[dict[str, tuple]] = []
    if 'en' not in langs:
        return table_from_rows('wikiqa', langs, items, with_negatives=hard_negatives)
    for split in splits:
        path = train_dir / 'wikiqa' / f'WikiQA-{split}.tsv'
        rows = read_tsv(path, 'wikiqa', (5, 7))
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
            rng = np.random.default_rng(stable_hash(question))
            for sentence in pos:
                if hard_negatives:
                    items.append({'en': (question, sentence, neg[int(rng.integers(len(neg)))])})
                else:
                    items.append({'en': (question, sentence)})
    return table_from_rows('wikiqa', langs, items, with_negatives=hard_negatives)


def xglue_qam(train_dir: Path, langs: Sequence[str], *, splits: list[str] = ('train', 'dev', 'test')) -> PairTable:
    """XGLUE QAM (German): query -> relevant passage (label 1), mono rows only."""
    items: list[dict[str, tuple]] = []
    if 'de' in langs:
        for split in splits:
            path = train_dir / 'xglue-de' / f'qam-{split}.tsv'
            for lineno, fields in enumerate(read_tsv(path, 'xglue-de', 3), 1):
                if fields[2].strip() == '1':
                    items.append({'de': (fields[0], fields[1])})
    return table_from_rows('xglue-qam', langs, items)


# The registry of training corpora, by the name a recipe's ``data[].corpus`` gives.
ADAPTERS: dict[str, Callable[..., PairTable]] = {
    'xnli': xnli, 'ntrex': ntrex, 'tatoeba': tatoeba, 'tico': tico, 'pawsx': pawsx, 'tydiqa': tydiqa,
    'arcd': arcd, 'cmrc2018': cmrc2018, 'iapp': iapp, 'zalo': zalo, 'wikiqa': wikiqa, 'xglue-qam': xglue_qam,
    'instructions': instructions,   # English instruction pairs (mono rows), see ._instructions
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
