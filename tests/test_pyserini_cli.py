"""Stock Pyserini CLIs through `python -m pyserini_hybrid.pyserini`: index, BM25 search, trec_eval."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyserini_hybrid._trec import read_run

LANGS = ('en', 'de', 'zh')


def _pyserini(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, '-m', 'pyserini_hybrid.pyserini', *args], cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope='module')
def bm25_runs(tmp_path_factory, fixtures_dir) -> Path:
    """Index each language with its own analyzer and search its own questions; one run per language."""
    work = tmp_path_factory.mktemp('pyserini_cli')
    src = fixtures_dir / 'tiny_multilingual'
    topics = (src / 'topics.tsv').read_text(encoding='utf-8').splitlines()
    for lang in LANGS:
        (work / 'docs' / lang).mkdir(parents=True)
        shutil.copy(src / f'{lang}.jsonl', work / 'docs' / lang / 'docs.jsonl')
        (work / f'topics.{lang}.tsv').write_text(
            '\n'.join(t for t in topics if t.startswith(f'{lang}_')) + '\n', encoding='utf-8')
        _pyserini('pyserini.index.lucene', '-collection', 'JsonCollection', '-input', f'docs/{lang}',
                  '-index', f'index.{lang}', '-language', lang, '-threads', '1', '-storeRaw', cwd=work)
        _pyserini('pyserini.search.lucene', '--index', f'index.{lang}', '--topics', f'topics.{lang}.tsv',
                  '--output', f'run.{lang}.txt', '--language', lang, '--hits', '3', '--bm25', cwd=work)
    qrels = [f'{lang}_q{i} 0 {lang}_{i} 1' for lang in LANGS for i in (1, 2)]
    (work / 'qrels.txt').write_text('\n'.join(qrels) + '\n')
    return work


@pytest.mark.slow
def test_every_language_is_analyzed_and_answered(bm25_runs):
    for lang in LANGS:
        run = read_run(bm25_runs / f'run.{lang}.txt')
        assert set(run) == {f'{lang}_q1', f'{lang}_q2'}, lang
        for i in (1, 2):
            # The answer sentence shares (stemmed / segmented) terms with its question: it ranks first.
            assert run[f'{lang}_q{i}'][0][0] == f'{lang}_{i}', (lang, run)


@pytest.mark.slow
def test_run_is_valid_trec(bm25_runs):
    lines = (bm25_runs / 'run.zh.txt').read_text().splitlines()
    qids = set()
    for line in lines:
        qid, q0, docid, rank, score, tag = line.split()
        assert q0 == 'Q0' and int(rank) >= 1 and float(score) > 0 and tag == 'Anserini'
        qids.add(qid)
    assert qids == {'zh_q1', 'zh_q2'} and len(lines) <= 2 * 3   # both questions answered, --hits 3


@pytest.mark.slow
def test_trec_eval_through_plugin(bm25_runs):
    runs = ' '.join(f'run.{lang}.txt' for lang in LANGS)
    (bm25_runs / 'run.all.txt').write_text(''.join((bm25_runs / r).read_text() for r in runs.split()))
    out = _pyserini('pyserini.eval.trec_eval', '-c', '-m', 'map', '-m', 'num_q', 'qrels.txt', 'run.all.txt',
                    cwd=bm25_runs).stdout
    scores = {fields[0]: float(fields[2]) for fields in (l.split() for l in out.splitlines()) if len(fields) == 3}
    assert scores['num_q'] == 6
    assert scores['map'] == pytest.approx(1.0)


def test_rejects_non_pyserini_module(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'pyserini_hybrid.pyserini', 'os'], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert 'expected a pyserini module' in result.stderr
