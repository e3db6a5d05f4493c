"""Vectorised fusion against its reference, ``pyserini.fusion`` through ``TrecRun``: same scores
(bit for bit), same order, ties included, same ``depth`` / ``k`` semantics."""
from __future__ import annotations

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from pyserini_hybrid._trec import Run, read_run, sort_hits
from pyserini_hybrid.search import fuse_runs


def _reference(runs: list[Run], method: str, rrf_k: int = 60, alpha: float = 0.5, hits: int = 1000,
               depth: int | None = None) -> Run:
    """What fuse_runs returned when it converted every run to a pyserini TrecRun."""
    from pyserini.fusion import interpolation, reciprocal_rank_fusion
    from pyserini.trectools import TrecRun

    trec_runs = []
    for run in runs:
        rows = [(qid, 'Q0', docid, rank, score, 'x')
                for qid in sorted(run) for rank, (docid, score) in enumerate(sort_hits(run[qid]), start=1)]
        trec_runs.append(TrecRun.from_list(rows) if rows else TrecRun())
    if method == 'rrf':
        fused = reciprocal_rank_fusion(trec_runs, rrf_k=rrf_k, depth=depth, k=hits)
    else:
        fused = interpolation(trec_runs, alpha=alpha, depth=depth, k=hits)
    out: Run = {}
    data = fused.run_data
    for qid, docid, score in zip(data['topic'].astype(str), data['docid'].astype(str), data['score'].astype(float)):
        out.setdefault(qid, []).append((docid, float(score)))
    return {qid: sort_hits(h)[:hits] for qid, h in out.items()}


def _run(rng: np.random.Generator, n_queries: int, n_hits: int, n_docs: int, decimals: int, scale: float,
         shift: float = 0.0, skip: float = 0.1) -> Run:
    """A run as written to disk (scores rounded, so with ties); some queries missing or empty."""
    run: Run = {}
    for q in range(n_queries):
        draw = rng.random()
        if draw < skip:
            continue
        if draw < skip * 1.5:
            run[f'{q}_en'] = []
            continue
        docs = rng.choice(n_docs, size=min(n_hits, n_docs), replace=False)
        scores = np.round(rng.random(len(docs)) * scale + shift, decimals)
        run[f'{q}_en'] = [(f'en_{d // 7}_{d % 7}', float(s)) for d, s in zip(docs, scores)]
    return run


@pytest.fixture(scope='module')
def runs() -> tuple[Run, Run, Run]:
    rng = np.random.default_rng(14)
    dense = _run(rng, 60, 40, 120, 6, 2.0, shift=-1.0)      # cosine-like, some negative
    bm25 = _run(rng, 60, 30, 120, 2, 20.0)                  # coarse scores: many ties
    third = _run(rng, 60, 50, 200, 3, 1.0)
    return dense, bm25, third


def _assert_identical(got: Run, expected: Run) -> None:
    assert list(got) == list(expected)                   # the same queries, in the same order
    for qid in expected:
        assert got[qid] == expected[qid], qid            # docids, order and float scores exactly


@pytest.mark.parametrize('hits', [1, 5, 37, 1000])
@pytest.mark.parametrize('depth', [None, 3, 25])
def test_rrf_agrees_with_pyserini(runs, hits, depth):
    dense, bm25, third = runs
    for rrf_k in (60, 0, 7):
        _assert_identical(fuse_runs([dense, bm25], 'rrf', rrf_k=rrf_k, hits=hits, depth=depth),
                          _reference([dense, bm25], 'rrf', rrf_k=rrf_k, hits=hits, depth=depth))
    # three runs: pandas' sums are Kahan-compensated, which differs from plain addition in the last bit
    _assert_identical(fuse_runs([dense, bm25, third], 'rrf', hits=hits, depth=depth),
                      _reference([dense, bm25, third], 'rrf', hits=hits, depth=depth))


@pytest.mark.parametrize('hits', [1, 5, 1000])
@pytest.mark.parametrize('depth', [None, 10])
@pytest.mark.parametrize('alpha', [0.0, 0.3, 0.5, 1.0])
def test_interpolation_agrees_with_pyserini(runs, hits, depth, alpha):
    dense, bm25, _ = runs
    _assert_identical(fuse_runs([dense, bm25], 'interpolation', alpha=alpha, hits=hits, depth=depth),
                      _reference([dense, bm25], 'interpolation', alpha=alpha, hits=hits, depth=depth))


def test_fusion_of_fixture_runs_with_ties_agrees_with_pyserini(tmp_path):
    from pathlib import Path

    toy = read_run(Path(__file__).parent / 'fixtures' / 'eval' / 'toy.run')   # d2 and d3 tie at 0.8
    other = {'q1': [('d3', 2.0), ('d9', 2.0), ('d1', 1.0)], 'q2': [('e1', 0.5)]}
    for method in ('rrf', 'interpolation'):
        for hits in (1, 2, 10):
            _assert_identical(fuse_runs([toy, other], method, hits=hits),
                              _reference([toy, other], method, hits=hits))
    # the tie d2 / d3 of the first run is ranked by docid: d2 gets rank 2, d3 rank 3
    fused = dict(fuse_runs([toy, {'q1': [('zz', 1.0)]}], 'rrf', rrf_k=0)['q1'])
    assert fused['d2'] == 1 / 2 and fused['d3'] == 1 / 3


def test_a_run_repeating_a_document_is_summed_as_pyserini_sums_it():
    repeated = {'q': [('a', 0.3), ('b', 0.7), ('a', 0.1), ('c', 0.7)], 'r': [('x', 1.0), ('x', 1.0)]}
    other = {'q': [('a', 0.2), ('c', 0.25)], 'r': [('y', 2.0)]}
    for method in ('rrf', 'interpolation'):
        for depth in (None, 2):
            _assert_identical(fuse_runs([repeated, other], method, depth=depth),
                              _reference([repeated, other], method, depth=depth))


def test_empty_inputs_and_bad_depth():
    assert fuse_runs([{}, {}]) == {}
    assert fuse_runs([{'q': []}, {'r': []}]) == {}
    with pytest.raises(ValueError, match='depth must be positive'):
        fuse_runs([{}, {}], depth=0)


from hypothesis import given, settings, strategies as st   # noqa: E402

_docs = st.sampled_from([f'd{i}' for i in range(8)])
_tied = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, -1.0])   # few values: ties everywhere
_hits = st.lists(st.tuples(_docs, st.one_of(_tied, st.floats(-10, 10, allow_nan=False))), max_size=8,
                 unique_by=lambda h: h[0])
_runs = st.dictionaries(st.sampled_from(['q1', 'q2', 'q10', 'b']), _hits, max_size=4)


@settings(max_examples=60, deadline=None)
@given(_runs, _runs, st.sampled_from(['rrf', 'interpolation']), st.integers(1, 9),
       st.one_of(st.none(), st.integers(1, 4)), st.sampled_from([0, 1, 60]), st.sampled_from([0.0, 0.3, 1.0]))
def test_fusion_agrees_with_pyserini_property(first, second, method, hits, depth, rrf_k, alpha):
    _assert_identical(fuse_runs([first, second], method, rrf_k=rrf_k, alpha=alpha, hits=hits, depth=depth),
                      _reference([first, second], method, rrf_k=rrf_k, alpha=alpha, hits=hits, depth=depth))


def test_fusion_of_run_files_as_columns_is_fuse_runs(runs, tmp_path):
    from pyserini_hybrid._trec import read_run_columns, write_run
    from pyserini_hybrid.search import fuse_columns

    dense, bm25, _ = runs
    paths = [write_run(run, tmp_path / f'{i}.trec') for i, run in enumerate((dense, bm25))]
    on_disk = [read_run(p) for p in paths]
    for method in ('rrf', 'interpolation'):
        fused = fuse_columns([read_run_columns(p) for p in paths], method, hits=20)
        _assert_identical(fused.to_run(), fuse_runs(on_disk, method, hits=20))
        assert write_run(fused, tmp_path / 'a.trec').read_bytes() == \
            write_run(fuse_runs(on_disk, method, hits=20), tmp_path / 'b.trec').read_bytes()


@pytest.mark.parametrize('workers', [1, 2])
def test_fuse_run_files_in_processes_writes_what_fuse_runs_fuses(runs, tmp_path, workers):
    from pyserini_hybrid._trec import TrecFormatError, write_run
    from pyserini_hybrid.search import fuse_run_files

    dense, bm25, third = runs
    pairs = [(dense, bm25), (bm25, third), (third, dense)]
    jobs = []
    for i, pair in enumerate(pairs):
        inputs = [write_run(run, tmp_path / f'in{i}-{j}.trec') for j, run in enumerate(pair)]
        jobs.append((inputs, tmp_path / f'out{i}.trec'))
    written = fuse_run_files(jobs, 'rrf', hits=25, tag='fused', workers=workers)
    assert written == [output for _, output in jobs]               # job order, whatever finished first
    for (inputs, _), path in zip(jobs, written):
        on_disk = [read_run(p) for p in inputs]
        assert path.read_bytes() == write_run(fuse_runs(on_disk, 'rrf', hits=25), tmp_path / 'ref.trec',
                                              tag='fused').read_bytes()
    (tmp_path / 'in1-0.trec').write_text('q1 Q0 d1 1 not-a-score run\n')
    with pytest.raises(TrecFormatError, match='in1-0.trec'):        # a worker's error reaches the caller
        fuse_run_files(jobs, 'rrf', hits=25, workers=workers)
    with pytest.raises(ValueError, match='hits must be positive'):
        fuse_run_files(jobs, 'rrf', hits=0, workers=workers)
