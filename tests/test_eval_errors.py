"""Bad input to the evaluation: each case gives one clear line naming the file (and line), exit code 2
from the CLI, and leaves no output behind.

The runs are scored against the hand-made XQuAD-R layout in tests/fixtures/lareqa (ids like
``x1_en`` for queries and ``en_0_1`` for sentences; Mono en has queries x1_en..x4_en).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from pyserini_hybrid._trec import TrecFormatError
from pyserini_hybrid.datasets import load_pool
from pyserini_hybrid.eval import RunMismatchError, evaluate_run, evaluate_run_file, exact_scores, find_run_files
from pyserini_hybrid.eval.__main__ import main

REPO = Path(__file__).resolve().parents[1]
GOOD = 'x1_en Q0 en_0_1 1 0.9 t\nx1_en Q0 en_0_0 2 0.5 t\nx2_en Q0 en_1_0 1 0.8 t\n'


@pytest.fixture
def data(fixtures_dir, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    return load_pool('xquad-r', data_dir=fixtures_dir / 'lareqa', verify=False)


def run_cli(args, capsys):
    """Run the CLI in process; return (exit code, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code, capsys.readouterr().err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()  # progress lines may come first; the error is the one last line
    assert [l for l in lines if l.startswith('error: ')] == lines[-1:], err
    assert 'Traceback' not in err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


def write(tmp_path: Path, text: str | bytes, name: str = 'run.trec') -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode('utf-8'))
    return path


# (run file content, what the one-line error must contain after 'FILE:')
BAD_RUNS = {
    'five_columns': (GOOD + 'x2_en Q0 en_2_0 2 0.7\n', ':4: expected 6 columns'),
    'seven_columns': ('x1_en Q0 en_0_1 1 0.9 t extra\n', ':1: expected 6 columns'),
    'non_numeric_score': (GOOD + 'x3_en Q0 en_2_2 1 high t\n', ":4: rank '1' / score 'high' is not numeric"),
    'nan_score': (GOOD + 'x3_en Q0 en_2_2 1 nan t\n', ":4: score 'nan' is not a finite number"),
    'infinite_score': ('x3_en Q0 en_2_2 1 inf t\n', ":1: score 'inf' is not a finite number"),
    'duplicate_pair': (GOOD + 'x1_en Q0 en_0_1 3 0.1 t\n', ':4: duplicate (query, doc) pair (x1_en, en_0_1)'),
    'not_utf8': (b'x1_en Q0 en_0_1 1 0.9 t\nx2_en Q0 \xff\xfe 1 0.8 t\n', ': not valid UTF-8'),
    'empty_file': ('', ': run is empty'),
    'blank_lines_only': ('\n   \n\n', ': run is empty'),
    'query_of_another_setting': (GOOD + 'x1_de Q0 en_0_1 1 0.3 t\n',
                                 ":4: query 'x1_de' is not a query of lareqa/xquad-r/en (a query of another setting"),
    'query_not_in_collection': ('x1_en Q0 en_0_1 1 0.9 t\nzz9_en Q0 en_0_1 1 0.3 t\n',
                                ":2: query 'zz9_en' is not a query of lareqa/xquad-r/en "
                                "(not a query of lareqa/xquad-r)"),
    'doc_of_another_language': (GOOD + 'x2_en Q0 de_1_0 2 0.4 t\n',
                                ":4: doc 'de_1_0' is not in the corpus of lareqa/xquad-r/en (languages en)"),
    'doc_not_in_collection': ('x1_en Q0 en_99_0 1 0.9 t\n', ":1: doc 'en_99_0' is not in the corpus"),
}


@pytest.mark.parametrize('case', sorted(BAD_RUNS))
def test_bad_run_file_one_line_error_and_no_output(case, data, tmp_path, capsys):
    content, needle = BAD_RUNS[case]
    run = write(tmp_path, content)
    out = tmp_path / 'report'
    code, err = run_cli(['--dataset', 'lareqa/xquad-r/en', '--runs', f'bad={run}', '--output-dir', out], capsys)
    assert code == 2
    assert_one_line_error(err, f'{run}{needle}')
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run.trec']  # no temporary leftovers


def test_bad_run_errors_from_the_api(data, tmp_path):
    with pytest.raises(TrecFormatError, match=r'run\.trec:4: expected 6 columns'):
        evaluate_run_file(data, 'lareqa/xquad-r/en', write(tmp_path, BAD_RUNS['five_columns'][0]))
    with pytest.raises(RunMismatchError, match=r"<mine>: query 'x1_de' is not a query of lareqa/xquad-r/en"):
        evaluate_run(data, 'lareqa/xquad-r/en', {'x1_de': [('en_0_1', 1.0)]}, name='<mine>')
    with pytest.raises(RunMismatchError, match='run is empty'):
        evaluate_run(data, 'lareqa/xquad-r/en', {'x1_en': []})


def test_a_run_that_misses_some_queries_is_scored_zero_for_them(data, tmp_path):
    result = evaluate_run_file(data, 'lareqa/xquad-r/en', write(tmp_path, GOOD))
    # x1_en: relevant en_0_1 at rank 1; x2_en: en_1_0 at rank 1; x3_en, x4_en absent -> 0.
    assert result.missing_queries == 2
    assert result.per_query['AP'] == {'x1_en': 1.0, 'x2_en': 1.0, 'x3_en': 0.0, 'x4_en': 0.0}
    assert result.mean('AP') == 0.5


def test_run_directory_without_any_expected_file(data, tmp_path, capsys):
    (tmp_path / 'runs').mkdir()
    write(tmp_path / 'runs', GOOD, 'something-else.trec')
    code, err = run_cli(['--dataset', 'lareqa/xquad-r', '--runs', f"a={tmp_path / 'runs'}",
                         '--output-dir', tmp_path / 'out'], capsys)
    assert code == 2
    assert_one_line_error(err, str(tmp_path / 'runs'), 'no run file for lareqa/xquad-r',
                          'lareqa.xquad-r.ar.trec')
    with pytest.raises(FileNotFoundError, match='no such run file or directory'):
        find_run_files('lareqa/xquad-r', tmp_path / 'missing')


@pytest.mark.parametrize('args, needles', [
    (['--runs', 'nameless'], ['--runs expects NAME=PATH', "'nameless'"]),
    (['--runs', 'a=RUN', 'a=RUN'], ['system name used twice: a']),
    (['--runs', 'a=RUN', '--resamples', '0'], ['--resamples must be positive, got 0']),
    (['--runs', 'a=RUN', '--threads', '-1'], ['--threads must be positive, got -1']),
    (['--runs', 'a=MISSING'], ['no such run file or directory', 'missing.trec']),
    (['--runs', 'a=RUN', '--check-trec-eval', 'lareqa/xquad-r/de'],
     ['--check-trec-eval lareqa/xquad-r/de: system a has no run file for that setting']),
    ([], ['nothing to evaluate']),
])
def test_bad_arguments(args, needles, data, tmp_path, capsys):
    run = write(tmp_path, GOOD)
    args = [a.replace('MISSING', str(tmp_path / 'missing.trec')).replace('RUN', str(run)) for a in args]
    out = tmp_path / 'report'
    code, err = run_cli(['--dataset', 'lareqa/xquad-r/en', '--output-dir', out] + args, capsys)
    assert code == 2
    assert_one_line_error(err, *needles)
    assert not out.exists()


def test_unknown_dataset_id(data, tmp_path, capsys):
    code, err = run_cli(['--dataset', 'lareqa/xquad-r/xx', '--runs', f'a={write(tmp_path, GOOD)}',
                         '--output-dir', tmp_path / 'out'], capsys)
    assert code == 2
    assert_one_line_error(err, "unknown dataset id 'lareqa/xquad-r/xx'", 'valid ids')


def test_output_directory_problems(data, tmp_path, capsys):
    run = write(tmp_path, GOOD)
    base = ['--dataset', 'lareqa/xquad-r/en', '--runs', f'a={run}']
    code, err = run_cli(base + ['--output-dir', tmp_path / 'no' / 'such' / 'dir'], capsys)
    assert code == 2
    assert_one_line_error(err, 'output directory does not exist', str(tmp_path / 'no' / 'such'))
    a_file = write(tmp_path, 'not a directory', 'taken')
    code, err = run_cli(base + ['--output-dir', a_file], capsys)
    assert code == 2
    assert_one_line_error(err, 'output directory is a file', str(a_file))
    assert a_file.read_text() == 'not a directory'


def test_failure_leaves_an_existing_report_untouched(data, tmp_path, capsys):
    out = tmp_path / 'report'
    out.mkdir()
    (out / 'report.md').write_text('previous report')
    bad = write(tmp_path, BAD_RUNS['nan_score'][0])
    code, _ = run_cli(['--dataset', 'lareqa/xquad-r/en', '--runs', f'a={bad}', '--output-dir', out], capsys)
    assert code == 2
    assert sorted(os.listdir(out)) == ['report.md'] and (out / 'report.md').read_text() == 'previous report'


def test_exact_encoder_with_an_instruction_template_needs_task(data, instruction_model, tmp_path, capsys):
    from pyserini_hybrid.train._instructions import SEARCH_TASK

    out = tmp_path / 'report'
    base = ['--dataset', 'lareqa/xquad-r/en', '--output-dir', out, '--resamples', '20', '--bootstrap', '20',
            '--cache-dir', tmp_path / 'cache']
    code, err = run_cli(base + ['--exact', f'mine={instruction_model}'], capsys)
    assert code == 2
    assert_one_line_error(err, f'encoder {instruction_model} has an instruction template', '--task')
    code, err = run_cli(base + ['--runs', f'a={write(tmp_path, GOOD)}', '--task', SEARCH_TASK], capsys)
    assert code == 2
    assert_one_line_error(err, '--task is for --exact encoders only')
    assert not out.exists() and not (tmp_path / 'cache').exists()
    # with the task: scored, and the report says which task the queries had
    main([str(a) for a in base + ['--exact', f'mine={instruction_model}', '--task', SEARCH_TASK]])
    report = json.loads((out / 'report.json').read_text(encoding='utf-8'))
    from pyserini_hybrid.encoders import resolve_precision

    resolved = resolve_precision('auto')   # the default precision, as this machine resolves it
    assert report['systems']['mine']['source'] == f"exact: {instruction_model} ({resolved}, task '{SEARCH_TASK}')"
    assert report['systems']['mine']['precision'] == resolved


def test_exact_mode_rejects_bad_vectors(data):
    import numpy as np

    q = np.zeros((len(data.queries), 4), dtype=np.float32)
    d = np.zeros((len(data.docs), 4), dtype=np.float32)
    d[3, 1] = np.nan
    with pytest.raises(ValueError, match='NaN or infinite'):
        exact_scores(data, q, d)
    with pytest.raises(ValueError, match="similarity must be 'ip' or 'cosine'"):
        exact_scores(data, q, np.zeros_like(d), similarity='l2')


def test_the_real_command_prints_no_traceback(fixtures_dir, tmp_path):
    bad = write(tmp_path, BAD_RUNS['duplicate_pair'][0])
    env = dict(os.environ, PYSERINI_HYBRID_DATA=str(fixtures_dir / 'lareqa'), PYSERINI_HYBRID_VERIFY='0')
    proc = subprocess.run([sys.executable, '-m', 'pyserini_hybrid.eval', '--dataset', 'lareqa/xquad-r/en',
                           '--runs', f'a={bad}', '--output-dir', str(tmp_path / 'out')],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, f'{bad}:4: duplicate (query, doc) pair')
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_check_trec_eval_fails_on_a_run_that_trec_eval_reads_differently(data, tmp_path, capsys):
    """A score written '0_95': Python's float() reads 95.0 (digit grouping), trec_eval's atof() 0.0.

    x2_en ranks the irrelevant en_2_2 first for us (AP 0.5) and second for trec_eval (AP 1): the
    cross-check must fail the evaluation, with one line, and write no report. (Should the run reader
    ever refuse such a score, this becomes a bad-score case and needs another disagreeing run.)
    """
    run = write(tmp_path, GOOD + 'x2_en Q0 en_2_2 2 0_95 t\n')
    out = tmp_path / 'report'
    code, err = run_cli(['--dataset', 'lareqa/xquad-r/en', '--runs', f'a={run}', '--output-dir', out,
                         '--check-trec-eval', '--resamples', '20', '--bootstrap', '20'], capsys)
    assert code == 2
    assert_one_line_error(err, 'trec_eval map 0.5000 and ir_measures AP 0.375000 disagree on', str(run))
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ['run.trec']
    # the same file without the odd score agrees, and the report records the check
    write(tmp_path, GOOD)
    main(['--dataset', 'lareqa/xquad-r/en', '--runs', f'a={run}', '--output-dir', str(out),
          '--check-trec-eval', '--resamples', '20', '--bootstrap', '20'])
    [check] = json.loads((out / 'report.json').read_text())['trec_eval_check']
    assert check['agree'] and check['trec_eval_map'] == 0.5


@pytest.mark.parametrize('text, message', [
    ('x1_en 0 en_0_1\n', ':1: expected 4 columns (qid iter docid rel), got 3'),
    ('x1_en 0 en_0_1 1\nx1_en 0 en_0_0 yes\n', ":2: relevance 'yes' is not an integer"),
    ('x1_en 0 en_0_1 1\nx1_en 0 en_0_1 0\n', ':2: duplicate judgement for (x1_en, en_0_1)'),
])
def test_bad_qrels_name_the_file_and_line(text, message, tmp_path):
    from pyserini_hybrid._trec import read_qrels

    path = write(tmp_path, text, 'qrels.txt')
    with pytest.raises(TrecFormatError) as exc:
        read_qrels(path)
    assert str(exc.value) == f'{path}{message}'
