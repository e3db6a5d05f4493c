"""Bad input to the search CLI: one `error: ...` line on stderr, exit 2, nothing written."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from pyserini_hybrid.datasets import clear_cache
from pyserini_hybrid.search import dense_search, fuse_runs, write_faiss_index
from pyserini_hybrid.search.__main__ import main


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:  # argparse-level errors exit from parse_args
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), err
    return err[0]


@pytest.fixture()
def tiny(fixtures_dir, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    clear_cache()
    yield fixtures_dir / 'lareqa'
    clear_cache()


@pytest.mark.parametrize('extra, message', [
    (['--hits', '0'], '--hits must be positive, got 0'),
    (['--hits', '-5'], '--hits must be positive, got -5'),
    (['--batch-size', '0'], '--batch-size must be positive'),
    (['--alpha', '1.5', '--fusion-method', 'interpolation'], '--alpha must be in [0, 1]'),
    (['--retriever', 'bm25', '--runs-dense', '.'], '--runs-dense is for --retriever fusion only'),
])
def test_bad_numbers_and_flags(tiny, tmp_path, capsys, extra, message):
    argv = ['--dataset', 'lareqa/xquad-r/en', '--output', str(tmp_path / 'run.trec')]
    if '--retriever' not in extra:
        argv += ['--retriever', 'dense']
    line = _error(capsys, argv + extra)
    assert message in line
    assert not list(tmp_path.iterdir())


def test_unknown_dataset_encoder_and_retriever(tiny, tmp_path, capsys):
    out = str(tmp_path / 'run.trec')
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/xx', '--retriever', 'bm25', '--output', out])
    assert "unknown dataset id 'lareqa/xquad-r/xx'" in line and 'valid ids' in line
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'dense', '--encoder', 'no-such-model',
                           '--output', out])
    assert "unknown encoder 'no-such-model'" in line
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'splade', '--output', out])
    assert "invalid choice: 'splade'" in line
    line = _error(capsys, ['--retriever', 'bm25', '--output', out])
    assert 'the following arguments are required: --dataset' in line
    assert not list(tmp_path.iterdir())


def test_encoder_with_an_instruction_template_needs_a_task(tiny, instruction_model, tmp_path, capsys):
    out = str(tmp_path / 'run.trec')
    for retriever in ('dense', 'fusion'):
        line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', retriever,
                               '--encoder', str(instruction_model), '--output', out])
        assert f"encoder {instruction_model} has an instruction template 'Instruct: {{task}}\\nQuery: '" in line
        assert '--task' in line
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'bm25', '--task', 'Find it',
                           '--output', out])
    assert '--task is for the dense encoder' in line
    assert not list(tmp_path.iterdir())


def test_output_in_missing_or_unwritable_place(tiny, tmp_path, capsys):
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'bm25',
                           '--output', str(tmp_path / 'missing' / 'run.trec')])
    assert f"output directory does not exist: {tmp_path / 'missing'}" in line
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r', '--retriever', 'bm25', '--all-settings',
                           '--output', str(tmp_path / 'missing' / 'runs')])
    assert 'output directory does not exist' in line
    (tmp_path / 'file').write_text('x')
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r', '--retriever', 'bm25', '--all-settings',
                           '--output', str(tmp_path / 'file')])
    assert 'must be a directory with --all-settings' in line
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'bm25', '--output', str(tmp_path)])
    assert 'is a directory' in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ['file']


def test_read_only_output_directory(tiny, tmp_path, capsys):
    """Root ignores permission bits: as root the directory is made immutable (chattr +i) instead."""
    target = tmp_path / 'ro'
    target.mkdir()
    as_root = hasattr(os, 'getuid') and os.getuid() == 0
    if as_root:
        if not shutil.which('chattr'):
            pytest.fail('running as root without chattr: cannot make a directory read-only')
        subprocess.run(['chattr', '+i', str(target)], check=True)
    else:
        target.chmod(0o555)
    try:
        line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'bm25',
                               '--output', str(target / 'run.trec')])
        assert line == f"error: output directory is not writable: {target}"
        line = _error(capsys, ['--dataset', 'lareqa/xquad-r', '--retriever', 'bm25', '--all-settings',
                               '--output', str(target)])
        assert line == f"error: output directory is not writable: {target}"
        assert not list(target.iterdir())
    finally:
        if as_root:
            subprocess.run(['chattr', '-i', str(target)], check=True)
        target.chmod(0o755)


def test_empty_topics(tiny, tmp_path, capsys, monkeypatch):
    """A collection whose Greek file has no question: its Greek settings have empty topics."""
    data = tmp_path / 'data'
    shutil.copytree(tiny, data)
    el = data / 'xquad-r' / 'el.json'
    content = json.loads(el.read_text(encoding='utf-8'))
    for article in content['data']:
        for paragraph in article['paragraphs']:
            paragraph['qas'] = []
    el.write_text(json.dumps(content), encoding='utf-8')
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(data))
    clear_cache()
    out = tmp_path / 'out'
    out.mkdir()
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/el', '--retriever', 'bm25', '--output', str(out / 'r.trec')])
    assert line == 'error: empty topics: no query of lareqa/xquad-r/el has a relevant document in its corpus'
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r', '--retriever', 'bm25', '--all-settings',
                           '--output', str(out / 'all')])
    assert line.startswith('error: empty topics: no query of lareqa/xquad-r/el')
    assert not list(out.iterdir())


def test_missing_reused_runs_and_bad_data(tiny, tmp_path, capsys, monkeypatch):
    (tmp_path / 'dense').mkdir()
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'fusion', '--runs-dense',
                           str(tmp_path / 'dense'), '--runs-bm25', str(tmp_path / 'dense'),
                           '--output', str(tmp_path / 'f.trec')])
    assert 'missing run file(s)' in line and 'lareqa.xquad-r.en.trec' in line
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(tmp_path / 'nowhere'))
    monkeypatch.setenv('PYSERINI_HYBRID_OFFLINE', '1')
    clear_cache()
    line = _error(capsys, ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'bm25', '--output',
                           str(tmp_path / 'r.trec')])
    assert 'ar.json' in line or 'en.json' in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dense']


def test_library_errors_are_one_line_value_errors(tmp_path):
    import numpy as np

    with pytest.raises(ValueError, match='hits must be positive'):
        dense_search(np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32), ['q'], ['d'], hits=0)
    with pytest.raises(ValueError, match='ids and vectors differ in length'):
        dense_search(np.zeros((2, 2), np.float32), np.zeros((1, 2), np.float32), ['q'], ['d'], hits=1)
    with pytest.raises(ValueError, match='fusion method must be one of rrf, interpolation'):
        fuse_runs([{}, {}], method='max')
    with pytest.raises(ValueError, match='at least two runs'):
        fuse_runs([{}])
    with pytest.raises(ValueError, match='free of whitespace'):
        write_faiss_index(tmp_path / 'i', np.zeros((1, 2), np.float32), ['a b'])
    assert not list(tmp_path.iterdir())
