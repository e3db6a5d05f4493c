"""TREC run IO: the columnar reader gives exactly what the line reader gives (order included), on
well-formed files and on files with junk, where read_run reports the line reader's error."""
from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pyserini_hybrid._trec import TrecFormatError, _read_run_columnar, _read_run_lines, read_run, write_run

ids = st.text(alphabet='abcXYZ019_-.ä\xa0\u3000\x0c', min_size=1, max_size=4)   # with whitespace str.split() knows
scores = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, 1.0, -0.5, 1e-7]))
hits = st.lists(st.tuples(ids, ids, st.integers(1, 999), scores), max_size=40,
                unique_by=lambda h: (h[0], h[1]))
separators = st.sampled_from([' ', '\t', '  ', ' \t '])


def _write(text: str) -> Path:
    handle = tempfile.NamedTemporaryFile('w', suffix='.trec', delete=False, encoding='utf-8')
    with handle:
        handle.write(text)
    return Path(handle.name)


# number spellings where parsers part ways: float()/int() (the line reader) decide, the columnar readers follow
odd_scores = st.sampled_from(['+.5', '5.', '1E5', '-0', '1_0.5', 'inf', '-Infinity', 'nan', '1e-400', '1e400',
                              '0x1p3', '1,5', '\u0661', '0.1000000000000000055511151231257827', '1e', '.'])
odd_ranks = st.sampled_from(['+1', '01', '1_0', '1.0', '1e3', '-3', '\u0661', '99999999999999999999'])


@settings(max_examples=150, deadline=None)
@given(hits, separators, st.booleans(), st.lists(st.tuples(odd_ranks, odd_scores), max_size=3))
def test_columnar_reader_equals_the_line_reader(rows, sep, blank_lines, odd):
    lines = [sep.join([q, 'Q0', d, str(rank), repr(score), 'tag']) for q, d, rank, score in rows]
    lines += [sep.join([f'odd{i}', 'Q0', 'd', rank, score, 'tag']) for i, (rank, score) in enumerate(odd)]
    if blank_lines:
        lines = [x for line in lines for x in (line, '')]
    path = _write('\n'.join(lines) + ('\n' if lines else ''))
    try:
        try:
            reference = _read_run_lines(path)
        except TrecFormatError as exc:   # an id holding whitespace splits its line
            reference = exc
        columnar = _read_run_columnar(path)
        columnar = None if columnar is None else columnar.to_run()
        if isinstance(reference, TrecFormatError):
            assert columnar is None
            with pytest.raises(TrecFormatError, match=re.escape(str(reference))):
                read_run(path)
            return
        if not any(c in '\xa0\u3000\x0c' for q, d, _, _ in rows for c in q + d):
            assert columnar is not None   # the fast path is the one taken on ordinary files
        assert columnar is None or columnar == reference
        assert columnar is None or list(columnar) == list(reference)   # queries in first-appearance order
        assert read_run(path) == reference
    finally:
        path.unlink()


@pytest.mark.parametrize('line, message', [
    ('q1 Q0 d1 1 0.5', r'expected 6 columns'),
    ('q1 Q0 d1 1 0.5 tag extra', r'expected 6 columns'),
    ('q1  d1 1 0.5 tag', r'expected 6 columns'),     # an empty field where the Q0 column is
    ('q1 Q0 d1 1 0.5 ', r'expected 6 columns'),      # a trailing space where the tag is
    ('q1 Q0 d1 one 0.5 tag', r'is not numeric'),
    ('q1 Q0 d1 1 high tag', r'is not numeric'),
    ('q1 Q0 d1 1 nan tag', r'not a finite number'),
    ('q1 Q0 d0 1 0.5 tag', r'duplicate \(query, doc\) pair'),
])
def test_junk_falls_back_to_the_line_reader_and_names_the_line(line, message):
    path = _write(f'q1 Q0 d0 1 0.9 tag\n{line}\nq2 Q0 d0 1 0.1 tag\n')
    try:
        assert _read_run_columnar(path) is None
        with pytest.raises(TrecFormatError, match=rf'^{path}:2: .*{message}'):
            read_run(path)
    finally:
        path.unlink()


def test_empty_and_missing_files(tmp_path):
    (tmp_path / 'empty.trec').write_text('', encoding='utf-8')
    assert read_run(tmp_path / 'empty.trec') == {}
    with pytest.raises(FileNotFoundError, match='^no such file: '):
        read_run(tmp_path / 'missing.trec')


def test_write_sorts_unsorted_hits_and_round_trips(tmp_path):
    run = {'q2': [('b', 0.5), ('a', 0.5), ('c', 0.9)], 'q1': [('x', -1.0)]}
    path = write_run(run, tmp_path / 'run.trec', tag='t')
    assert path.read_text(encoding='utf-8').splitlines() == [
        'q1 Q0 x 1 -1.000000 t', 'q2 Q0 c 1 0.900000 t', 'q2 Q0 a 2 0.500000 t', 'q2 Q0 b 3 0.500000 t']
    assert read_run(path) == {'q1': [('x', -1.0)], 'q2': [('c', 0.9), ('a', 0.5), ('b', 0.5)]}
    with pytest.raises(ValueError, match=r'^non-finite score inf for query q1, doc y$'):
        write_run({'q1': [('x', 1.0), ('y', math.inf)]}, tmp_path / 'bad.trec')
    assert not (tmp_path / 'bad.trec').exists()


def _write_reference(run, hits=None, tag='t') -> str:
    """The line-by-line writer write_run was (one f-string a hit)."""
    from pyserini_hybrid._trec import sort_hits

    out = []
    for qid in sorted(run):
        ranked = sort_hits(run[qid])[:hits]
        out += [f'{qid} Q0 {docid} {rank} {score:.6f} {tag}\n' for rank, (docid, score) in enumerate(ranked, start=1)]
    return ''.join(out)


word = st.text(alphabet='abXY019_-.ä', min_size=1, max_size=4)
finite = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, -0.0, 1.0, 0.5, 2.5e-7, -5e-7]))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(word, st.lists(st.tuples(word, finite), max_size=12), max_size=6),
       st.one_of(st.none(), st.integers(1, 5)))
def test_columnar_writer_writes_what_the_line_writer_wrote(run, hits):
    from pyserini_hybrid._trec import RunColumns

    with tempfile.TemporaryDirectory() as tmp:
        for given_run in (run, RunColumns.from_run(run)):
            path = write_run(given_run, Path(tmp) / 'run.trec', tag='t', hits=hits)
            assert path.read_text(encoding='utf-8') == _write_reference(run, hits)


def test_single_space_runs_take_the_arrow_path(tmp_path):
    from pyserini_hybrid._trec import _arrow_columns

    path = write_run({'q2': [('b', 0.5), ('a', 0.5)], 'q1': [('x', -1.0)]}, tmp_path / 'run.trec', tag='t')
    assert _arrow_columns(path.read_bytes()) is not None
    assert read_run(path) == {'q1': [('x', -1.0)], 'q2': [('a', 0.5), ('b', 0.5)]}
