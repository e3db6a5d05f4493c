"""Batch samplers: language purity, cross rows, alpha, duplicates, determinism, source proportions.

Tables here are synthetic: item ``i`` of table ``T`` has query ``T-q{i}-{lang}`` and positive
``T-p{i}-{lang}``, so a row's languages can be read back from its texts, independently of the
sampler's own row arithmetic.
"""
from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest
from torch.utils.data import ConcatDataset, DataLoader

from pyserini_hybrid.train import (TRAIN_LANGUAGES, ZERO_SHOT_LANGUAGES, CrossBatchSampler, HybridBatchSampler,
                                   MonoBatchSampler, PairBatchSampler, PairTable, make_samplers, pair_table)

LANGS = ('de', 'en', 'es', 'zh')


def parallel_table(name: str, n: int, langs=LANGS, negatives: bool = False) -> PairTable:
    q = np.array([[f'{name}-q{i}-{l}' for l in langs] for i in range(n)], dtype=object)
    p = np.array([[f'{name}-p{i}-{l}' for l in langs] for i in range(n)], dtype=object)
    neg = np.array([[f'{name}-n{i}-{l}' for l in langs] for i in range(n)], dtype=object) if negatives else None
    return PairTable(name, langs, q, p, neg)


def translation_table(name: str, n: int, langs=LANGS) -> PairTable:
    t = np.array([[f'{name}-t{i}-{l}' for l in langs] for i in range(n)], dtype=object)
    return PairTable(name, langs, t, t.copy(), same_text=True)


def qa_table(name: str, n: int, lang: str) -> PairTable:
    """Native QA in one language: the other columns are empty."""
    q = np.full((n, len(LANGS)), None, dtype=object)
    p = np.full((n, len(LANGS)), None, dtype=object)
    j = LANGS.index(lang)
    q[:, j] = [f'{name}-q{i}-{lang}' for i in range(n)]
    p[:, j] = [f'{name}-p{i}-{lang}' for i in range(n)]
    return PairTable(name, LANGS, q, p)


def lang_of(text: str) -> str:
    return text.rsplit('-', 1)[1]


def build(tables, cls=HybridBatchSampler, batch_size=8, seed=0, **kwargs):
    datasets = [t.to_dataset() for t in tables]
    subs = [PairBatchSampler(ds, batch_size, True, seed=seed) for ds in datasets]
    return cls(ConcatDataset(datasets), subs, seed=seed, **kwargs)


def texts_of(sampler, batch):
    """(source index, [(query, positive, negative)]) of a batch of global indices."""
    offsets = sampler.offsets
    source = max(i for i, o in enumerate(offsets) if batch[0] >= o)
    table = sampler.batch_samplers[source].table
    assert all(offsets[source] <= r < offsets[source] + table.n_rows for r in batch), 'batch mixes sources'
    return source, [table.row_texts(r - offsets[source]) for r in batch]


def test_row_index_encodes_item_and_languages():
    table = parallel_table('T', 5)
    seen = set()
    for i in range(5):
        for a, la in enumerate(LANGS):
            for b, lb in enumerate(LANGS):
                row = table.row_index(i, a, b)
                seen.add(row)
                assert table.decode(row) == (i, a, b)
                assert table.row_texts(row) == (f'T-q{i}-{la}', f'T-p{i}-{lb}', None)
    assert seen == set(range(table.n_rows))


def test_lazy_dataset_yields_prefixed_texts_and_finds_its_table():
    table = parallel_table('T', 3, negatives=True)
    ds = table.to_dataset('query: ', 'passage: ')
    assert pair_table(ds) is table
    row = ds[table.row_index(2, 1, 3)]
    assert row == {'anchor': 'query: T-q2-en', 'positive': 'passage: T-p2-zh', 'negative': 'passage: T-n2-zh'}
    assert 'negative' not in table.to_dataset(with_negatives=False)[0]
    # an instruction template replaces the query prefix for a table with a task
    table.task = 'Find the answer'
    assert table.to_dataset('query: ', '', 'Instruct: {task}\nQuery: ')[0]['anchor'] == 'Instruct: Find the answer\nQuery: T-q0-de'


def test_mono_batches_are_one_language_drawn_uniformly():
    sampler = build([parallel_table('A', 60), parallel_table('B', 40), qa_table('Q', 30, 'en')], MonoBatchSampler)
    langs = collections.Counter()
    batches = 0
    for epoch in range(6):
        sampler.set_epoch(epoch)
        for batch in sampler:
            _, rows = texts_of(sampler, batch)
            row_langs = {lang_of(t) for row in rows for t in row if t}
            assert len(row_langs) == 1, rows
            langs[row_langs.pop()] += 1
            batches += 1
    assert set(langs) == set(LANGS)
    for lang in LANGS:  # uniform over the languages: each about a quarter
        assert abs(langs[lang] / batches - 0.25) < 0.1, langs


def test_cross_rows_pair_different_languages_drawn_per_row():
    sampler = build([parallel_table('A', 80), translation_table('T', 50)], CrossBatchSampler)
    pairs = collections.Counter()
    for batch in sampler:
        _, rows = texts_of(sampler, batch)
        for query, positive, _ in rows:
            assert lang_of(query) != lang_of(positive)
            pairs[(lang_of(query), lang_of(positive))] += 1
        assert len({(lang_of(q), lang_of(p)) for q, p, _ in rows}) > 1  # per-row draw, not one pair per batch
    assert len(pairs) == len(LANGS) * (len(LANGS) - 1)  # every ordered pair occurs


def test_hybrid_alpha_proportion():
    tables = [parallel_table('A', 200), parallel_table('B', 120)]
    for alpha in (0.3, 0.5):
        sampler = build(tables, alpha=alpha, seed=1)
        kinds = collections.Counter()
        for epoch in range(40):
            sampler.set_epoch(epoch)
            for batch in sampler:
                _, rows = texts_of(sampler, batch)
                same = [lang_of(q) == lang_of(p) for q, p, _ in rows]
                assert all(same) or not any(same), 'a batch is either mono or cross'
                kinds['mono' if all(same) else 'cross'] += 1
        n = sum(kinds.values())
        assert n >= 1500
        # binomial standard deviation is at most 0.5 / sqrt(n) ~ 0.013: allow 4 of them
        assert abs(kinds['mono'] / n - alpha) < 4 * 0.5 / np.sqrt(n), (alpha, kinds)
    assert all(k == 'mono' for k in _kinds(build(tables, alpha=1.0)))
    assert all(k == 'cross' for k in _kinds(build(tables, alpha=0.0)))


def _kinds(sampler):
    out = []
    for batch in sampler:
        _, rows = texts_of(sampler, batch)
        out.append('mono' if all(lang_of(q) == lang_of(p) for q, p, _ in rows) else 'cross')
    return out


def test_source_chosen_in_proportion_to_size_and_weight():
    small, big = translation_table('S', 100), translation_table('L', 300)
    counts = collections.Counter()
    sampler = build([small, big], CrossBatchSampler, batch_size=4)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for batch in sampler:
            counts[texts_of(sampler, batch)[0]] += 1
    n = sum(counts.values())
    assert abs(counts[1] / n - 0.75) < 0.03, counts
    # a weight multiplies the size: 100 x 3 vs 300 -> even
    counts.clear()
    sampler = build([small, big], CrossBatchSampler, batch_size=4, weights={'S': 3.0})
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for batch in sampler:
            counts[texts_of(sampler, batch)[0]] += 1
    assert abs(counts[0] / sum(counts.values()) - 0.5) < 0.03, counts


def _draw(sampler, n):
    """(source index, kind, first query's language) of at least ``n`` batches, over as many epochs as needed."""
    out = []
    epoch = 0
    while len(out) < n:
        sampler.set_epoch(epoch)
        for batch in sampler:
            source, rows = texts_of(sampler, batch)
            same = [lang_of(q) == lang_of(p) for q, p, _ in rows]
            assert all(same) or not any(same), 'a batch is either mono or cross'
            out.append((source, 'mono' if all(same) else 'cross', lang_of(rows[0][0])))
        epoch += 1
    return out


def test_a_share_gives_a_source_that_fraction_of_the_batches():
    # I: 40 English instruction-like pairs; by size it would get about 1% of the batches
    instructions = qa_table('I', 40, 'en')
    tables = [parallel_table('A', 300), translation_table('T', 150), instructions]
    by_size = _draw(build(tables, alpha=0.5, seed=2), 2000)
    assert sum(s == 2 for s, _, _ in by_size) / len(by_size) < 0.03
    draws = _draw(build(tables, alpha=0.5, seed=2, shares={'I': 0.25}), 2000)
    n = len(draws)
    own = [d for d in draws if d[0] == 2]
    # binomial standard deviation sqrt(0.25 * 0.75 / n) ~ 0.0097: allow 4 of them
    assert abs(len(own) / n - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n), len(own) / n
    assert all(kind == 'mono' and lang == 'en' for _, kind, lang in own)   # the only batches it can fill
    # the other sources split the rest as they would alone: mono with probability alpha, and cross
    # batches by cross-capable size (A 300 items, T 150)
    rest = [d for d in draws if d[0] != 2]
    mono = sum(kind == 'mono' for _, kind, _ in rest) / len(rest)
    assert abs(mono - 0.5) < 4 * 0.5 / np.sqrt(len(rest)), mono
    cross = [s for s, kind, _ in rest if kind == 'cross']
    assert abs(cross.count(0) / len(cross) - 2 / 3) < 4 * np.sqrt(2 / 9 / len(cross)), cross.count(0) / len(cross)


def test_shares_of_two_sources_and_the_batch_kinds_of_a_shared_source():
    tables = [parallel_table('A', 200), parallel_table('P', 60), qa_table('I', 40, 'en')]
    draws = _draw(build(tables, alpha=0.3, seed=5, shares={'P': 0.3, 'I': 0.2}), 2000)
    n = len(draws)
    for source, share in ((1, 0.3), (2, 0.2)):
        got = sum(d[0] == source for d in draws) / n
        assert abs(got - share) < 4 * np.sqrt(share * (1 - share) / n), (source, got)
    # P can fill both kinds: mono with probability alpha, like every other batch
    kinds = [kind for s, kind, _ in draws if s == 1]
    assert abs(kinds.count('mono') / len(kinds) - 0.3) < 4 * np.sqrt(0.21 / len(kinds))
    # a pure strategy holds for shared sources too
    assert {kind for _, kind, _ in _draw(build(tables[:2], CrossBatchSampler, shares={'P': 0.5}), 200)} == {'cross'}


def test_shares_are_seeded():
    tables = [parallel_table('A', 80), translation_table('T', 40), qa_table('I', 30, 'en')]

    def batches(seed, epoch=0):
        sampler = build(tables, alpha=0.5, seed=seed, shares={'I': 0.4})
        sampler.set_epoch(epoch)
        return list(sampler)

    first = batches(3)
    assert first == batches(3)
    assert first != batches(4) and first != batches(3, epoch=1)
    sampler = build(tables, alpha=0.5, seed=3, shares={'I': 0.4})
    assert list(sampler) == list(sampler) == first      # a resumed run replays its epoch
    # the trainer's factory gives the same batches, and stays picklable
    _, multi = make_samplers('hybrid', 0.5, shares={'I': 0.4})
    assert pickle.loads(pickle.dumps(multi)).keywords['shares'] == {'I': 0.4}
    datasets = [t.to_dataset() for t in tables]
    subs = [PairBatchSampler(ds, 8, True, seed=3) for ds in datasets]
    assert list(multi(ConcatDataset(datasets), batch_samplers=subs, seed=3)) == first


def test_bad_shares_are_clear_errors():
    tables = [parallel_table('A', 50), qa_table('I', 30, 'en')]
    for shares, message in [({'X': 0.2}, 'shares name unknown source'), ({'I': 0.0}, r'a share must be in \(0, 1\)'),
                            ({'I': 1.0}, r'a share must be in \(0, 1\)'),
                            ({'A': 0.6, 'I': 0.4}, 'shares sum to 1: they must sum to less than 1'),
                            ({'A': 0.3, 'I': 0.4}, 'every source has a share')]:
        with pytest.raises(ValueError, match=message):
            build(tables, shares=shares)
    with pytest.raises(ValueError, match="source 'I' has a share but cannot fill a cross-lingual batch of 8 rows"):
        build(tables, CrossBatchSampler, shares={'I': 0.2})


def test_mono_source_choice_within_a_language_follows_size():
    # German: A has 90 items, Q (native German QA) 30 -> A in about 3 of 4 German batches
    sampler = build([parallel_table('A', 90), qa_table('Q', 30, 'de')], MonoBatchSampler, batch_size=4)
    counts = collections.Counter()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        for batch in sampler:
            source, rows = texts_of(sampler, batch)
            if lang_of(rows[0][0]) == 'de':
                counts[source] += 1
    n = sum(counts.values())
    assert abs(counts[0] / n - 0.75) < 0.06, counts


def test_no_duplicate_texts_inside_a_batch():
    # next-sentence style data: item i's positive is item i+1's query; plus repeated positives
    n = 40
    q = np.array([[f's{i}-{l}' for l in LANGS] for i in range(n)], dtype=object)
    p = np.array([[f's{i + 1}-{l}' for l in LANGS] for i in range(n)], dtype=object)
    p[::5] = p[1::5][:len(p[::5])]                # every 5th item repeats its neighbour's positive
    p[3::5] = np.char.upper(p[4::5].astype(str)).astype(object)   # ... or differs from it only in case
    neg = np.array([[f's{(i + 7) % n}-{l}' for l in LANGS] for i in range(n)], dtype=object)
    table = PairTable('next', LANGS, q, p, neg)
    for cls in (MonoBatchSampler, CrossBatchSampler):
        sampler = build([table], cls, batch_size=8)
        batches = 0
        for epoch in range(5):
            sampler.set_epoch(epoch)
            for batch in sampler:
                _, rows = texts_of(sampler, batch)
                texts = [' '.join(t.lower().split()) for row in rows for t in row]
                assert len(texts) == len(set(texts)), rows
                batches += 1
        assert batches == 5 * (n // 8)


def test_identical_translation_is_never_a_row():
    q = np.array([['Tom.', 'Tom.'], ['Hallo Welt.', 'Hello world.'], ['Ja.', 'Yes.']], dtype=object)
    table = PairTable('tr', ('de', 'en'), q, q.copy(), same_text=True)
    sampler = build([table], CrossBatchSampler, batch_size=2)
    rows = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        for batch in sampler:
            rows += texts_of(sampler, batch)[1]
    assert len(rows) >= 10   # one batch of two rows per epoch at least: the check below ran
    assert all(query != positive for query, positive, _ in rows)
    assert {frozenset((q, p)) for q, p, _ in rows} == {frozenset(('Hallo Welt.', 'Hello world.')),
                                                       frozenset(('Ja.', 'Yes.'))}


def test_same_seed_same_batches_and_epochs_differ():
    tables = [parallel_table('A', 50), translation_table('T', 40), qa_table('Q', 20, 'zh')]

    def batches(seed, epoch):
        sampler = build(tables, alpha=0.5, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    first = batches(3, 0)
    assert first == batches(3, 0)
    assert first != batches(4, 0)
    assert first != batches(3, 1)
    # iterating the same epoch twice replays it (what a resumed run relies on)
    sampler = build(tables, alpha=0.5, seed=3)
    assert list(sampler) == list(sampler) == first



@pytest.mark.parametrize('world_size', [2, 3, 4])
def test_ddp_ranks_share_one_sequence_of_a_multiple_of_the_world_size(world_size):
    # accelerate gives rank r the batches r, r + world_size, ...: the one sequence must not have a tail
    tables = [parallel_table('A', 50), translation_table('T', 40), qa_table('Q', 20, 'zh')]
    alone = build(tables, alpha=0.5, seed=3)
    ddp = build(tables, alpha=0.5, seed=3, world_size=world_size)
    assert len(ddp) % world_size == 0 and len(alone) - world_size < len(ddp) <= len(alone)
    assert list(ddp) == list(alone)[:len(ddp)]
    with pytest.raises(ValueError, match='world_size'):
        build(tables, alpha=0.5, world_size=0)


def test_zero_shot_languages_excluded_by_default():
    assert set(ZERO_SHOT_LANGUAGES) == {'el', 'vi'}
    assert not set(TRAIN_LANGUAGES) & {'el', 'vi'}
    assert len(TRAIN_LANGUAGES) == 9
    # a sampler restricted to some languages never yields others
    table = parallel_table('A', 40)
    ds = table.to_dataset()
    sub = PairBatchSampler(ds, 4, True, seed=0, alpha=0.5, languages=('de', 'en'))
    langs = [table.row_langs(row) for batch in sub for row in batch]
    assert len(langs) == len(sub) * 4 >= 36   # 40 items, 4 rows a batch: the loop is not empty
    assert {lang for pair in langs for lang in pair} == {'de', 'en'}


def test_standalone_pair_sampler_is_a_default_batch_sampler():
    from sentence_transformers.base.sampler import DefaultBatchSampler

    table = parallel_table('A', 33)
    sub = PairBatchSampler(table.to_dataset(), 8, True, seed=0, alpha=0.5)
    assert isinstance(sub, DefaultBatchSampler)
    batches = list(sub)
    assert len(batches) == len(sub) == 33 // 8
    assert all(len(b) == 8 and all(table.is_valid(r) for r in b) for b in batches)


def test_impossible_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match='cross-lingual batch'):
        build([qa_table('Q', 50, 'en')], CrossBatchSampler)
    with pytest.raises(ValueError, match='mono batch'):
        build([translation_table('T', 50)], MonoBatchSampler)


def test_trainer_factories_build_working_dataloaders():
    """The factories as sentence-transformers' trainer calls them, through a real DataLoader."""
    import torch

    batch_sampler, multi = make_samplers('hybrid', 0.5, languages=('de', 'en', 'es'))
    assert pickle.loads(pickle.dumps((batch_sampler, multi)))  # saved with every checkpoint
    tables = [parallel_table('A', 30, negatives=False), qa_table('Q', 20, 'en')]
    datasets = [t.to_dataset('query: ', 'passage: ') for t in tables]
    gen = torch.Generator().manual_seed(0)
    subs = [batch_sampler(ds, batch_size=4, drop_last=True, valid_label_columns=None, generator=gen, seed=5)
            for ds in datasets]
    sampler = multi(ConcatDataset(datasets), batch_samplers=subs, generator=gen, seed=5)
    loader = DataLoader(ConcatDataset(datasets), batch_sampler=sampler, collate_fn=lambda rows: rows)
    n = 0
    for rows in loader:
        assert len(rows) == 4
        for row in rows:
            assert row['anchor'].startswith('query: ') and row['positive'].startswith('passage: ')
            assert lang_of(row['anchor']) in ('de', 'en', 'es') and lang_of(row['positive']) in ('de', 'en', 'es')
        n += 1
    assert n == len(sampler) > 0
    # a plain dataset (the fixed validation batches) is read in order
    from datasets import Dataset

    flat = Dataset.from_dict({'anchor': list('abcdefgh'), 'positive': list('ABCDEFGH')})
    assert list(batch_sampler(flat, batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
