"""Bad input on the dataset side: each case gives one clear line naming the file, and leaves no output."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import pyserini_hybrid  # noqa: F401
from pyserini_hybrid.datasets import (LareqaDataError, collection_files, dataset_id_from_run_filename,
                                      export_setting, load_pool, parse_dataset_id, run_filename)
from pyserini_hybrid.datasets._download import fetch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(fixtures_dir, tmp_path) -> Path:
    """A writable copy of the MLQA-R fixtures: tmp/lareqa/mlqa-r/{lang}.json."""
    root = tmp_path / 'lareqa'
    shutil.copytree(fixtures_dir / 'lareqa' / 'mlqa-r', root / 'mlqa-r')
    return root


def _edit(data_dir: Path, lang: str, change) -> Path:
    path = data_dir / 'mlqa-r' / f'{lang}.json'
    data = json.loads(path.read_text(encoding='utf-8'))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding='utf-8')
    return path


def _load_error(data_dir: Path) -> str:
    with pytest.raises(LareqaDataError) as info:
        load_pool('mlqa-r', data_dir=data_dir, verify=False)
    message = str(info.value)
    assert '\n' not in message, message
    return message


def _para(data, a=0, j=0):
    return data['data'][a]['paragraphs'][j]


# --------------------------------------------------------------------------- malformed files


def test_truncated_json(data_dir):
    path = data_dir / 'mlqa-r' / 'de.json'
    text = path.read_text(encoding='utf-8')
    path.write_text(text[: len(text) // 2], encoding='utf-8')
    message = _load_error(data_dir)
    assert message.startswith(f'{path}:') and 'invalid JSON' in message


def test_non_utf8_json(data_dir):
    path = data_dir / 'mlqa-r' / 'zh.json'
    path.write_bytes(path.read_text(encoding='utf-8').encode('gb18030'))
    message = _load_error(data_dir)
    assert message.startswith(f'{path}: not valid UTF-8')


def test_missing_sentences(data_dir):
    path = _edit(data_dir, 'es', lambda d: _para(d).pop('sentences'))
    assert _load_error(data_dir) == f'{path}: data[0].paragraphs[0].sentences is missing'


def test_missing_sentence_breaks(data_dir):
    path = _edit(data_dir, 'de', lambda d: d['data'][1]['paragraphs'][0].pop('sentence_breaks'))
    assert _load_error(data_dir) == f'{path}: data[1].paragraphs[0].sentence_breaks is missing'


def test_breaks_beyond_the_context(data_dir):
    def change(d):
        para = _para(d)
        para['sentence_breaks'][-1][1] = len(para['context']) + 5
    path = _edit(data_dir, 'ar', change)
    message = _load_error(data_dir)
    assert message.startswith(f'{path}: data[0].paragraphs[0].sentence_breaks[1] = ') and 'cover' in message


def test_breaks_out_of_order(data_dir):
    def change(d):
        para = _para(d)
        para['sentence_breaks'][0], para['sentence_breaks'][1] = para['sentence_breaks'][1], para['sentence_breaks'][0]
    path = _edit(data_dir, 'es', change)
    assert _load_error(data_dir).startswith(f'{path}: data[0].paragraphs[0].sentence_breaks[1]')


def test_breaks_and_sentences_disagree_in_number(data_dir):
    path = _edit(data_dir, 'hi', lambda d: _para(d)['sentences'].append('extra'))
    assert _load_error(data_dir) == f'{path}: data[0].paragraphs[0]: 3 sentences but 2 sentence_breaks'


def test_answer_start_outside_every_sentence(data_dir):
    # zh sentences are separated by a bullet: an answer on the bullet is in no sentence
    path = _edit(data_dir, 'zh', lambda d: _para(d)['qas'][0]['answers'][0].update(answer_start=4))
    message = _load_error(data_dir)
    assert message == (f'{path}: data[0].paragraphs[0].qas[0] (id q1): answer_start 4 lies outside '
                       f'every sentence span')


def test_answer_start_not_an_integer(data_dir):
    path = _edit(data_dir, 'vi', lambda d: _para(d)['qas'][0]['answers'][0].update(answer_start='3'))
    assert _load_error(data_dir) == f'{path}: data[0].paragraphs[0].qas[0].answers[0].answer_start should be int, got str'


def test_question_without_answers(data_dir):
    path = _edit(data_dir, 'es', lambda d: _para(d)['qas'][1].update(answers=[]))
    assert _load_error(data_dir) == f'{path}: data[0].paragraphs[0].qas[1] (id q5): no answers'


def test_duplicate_question_id(data_dir):
    path = _edit(data_dir, 'es', lambda d: _para(d)['qas'][1].update(id='q2'))
    assert _load_error(data_dir) == f'{path}: data[0].paragraphs[0].qas[1]: duplicate question id q2'


def test_not_a_squad_file(data_dir):
    path = data_dir / 'mlqa-r' / 'en.json'
    path.write_text('[1, 2, 3]', encoding='utf-8')
    assert _load_error(data_dir) == f'{path}: top level is not a JSON object'


def test_failed_load_is_not_cached(data_dir):
    path = data_dir / 'mlqa-r' / 'de.json'
    good = path.read_bytes()
    path.write_bytes(good[:100])
    _load_error(data_dir)
    path.write_bytes(good)
    assert len(load_pool('mlqa-r', data_dir=data_dir, verify=False).docs) == 31


# --------------------------------------------------------------------------- ids


def test_unknown_language_code():
    with pytest.raises(ValueError) as info:
        parse_dataset_id('lareqa/mlqa-r/el')  # Greek is in XQuAD-R only
    message = str(info.value)
    assert "'lareqa/mlqa-r/el'" in message and 'ar,de,en,es,hi,vi,zh' in message and '\n' not in message


def test_unknown_dataset_id():
    for bad in ('lareqa/squad', 'xquad-r/en', 'lareqa/xquad-r/en/de', 'lareqa/xquad-r/en-de-fr', ''):
        with pytest.raises(ValueError, match='unknown dataset id .*valid ids: lareqa/xquad-r'):
            parse_dataset_id(bad)


def test_cross_setting_needs_two_languages():
    with pytest.raises(ValueError, match='the Mono id is lareqa/xquad-r/en'):
        parse_dataset_id('lareqa/xquad-r/en-en')


def test_bad_run_filenames():
    with pytest.raises(ValueError, match="does not end in '.trec'"):
        dataset_id_from_run_filename('lareqa.xquad-r.en.txt')
    with pytest.raises(ValueError, match='names no LAReQA setting'):
        dataset_id_from_run_filename('lareqa.xquad-r.xx.trec')
    with pytest.raises(ValueError, match='unknown dataset id'):
        run_filename('lareqa/xquad-r/en-xx')


# --------------------------------------------------------------------------- sources: md5, offline, download


def test_md5_mismatch_of_a_local_file(lareqa_dir, tmp_path):
    root = tmp_path / 'lareqa'
    shutil.copytree(lareqa_dir / 'xquad-r', root / 'xquad-r')
    path = root / 'xquad-r' / 'vi.json'
    path.write_bytes(path.read_bytes().replace(b'"version"', b'"Version"'))
    with pytest.raises(LareqaDataError) as info:
        load_pool('xquad-r', data_dir=root)
    message = str(info.value)
    assert message.startswith(f'{path}: md5 ') and 'pinned 72a138effea0cea9d5f7573553d70809' in message


def test_missing_data_file_under_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(tmp_path))
    with pytest.raises(LareqaDataError) as info:
        collection_files('mlqa-r')
    message = str(info.value)
    assert message.startswith(f'missing data file {tmp_path}/mlqa-r/ar.json') and '\n' not in message
    assert '354d67d1cd066854cdfbf5ad0e6105528976141d/mlqa-r/ar.json' in message
    assert list(tmp_path.iterdir()) == []


def test_missing_data_offline(tmp_path, monkeypatch):
    monkeypatch.delenv('PYSERINI_HYBRID_DATA')
    monkeypatch.setenv('IR_DATASETS_HOME', str(tmp_path / 'irds'))
    monkeypatch.setenv('PYSERINI_HYBRID_OFFLINE', '1')
    with pytest.raises(LareqaDataError) as info:
        load_pool('xquad-r')
    message = str(info.value)
    assert message.startswith(f"missing data file {tmp_path / 'irds' / 'lareqa' / 'xquad-r' / 'ar.json'} (offline)")
    assert not (tmp_path / 'irds' / 'lareqa').exists()


@contextlib.contextmanager
def _server(directory: Path):
    handler = partial(SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a, **k: None
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()


def test_md5_mismatch_of_a_download(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    dest = tmp_path / 'cache' / 'mlqa-r' / 'en.json'
    with _server(fixtures_dir / 'lareqa' / 'mlqa-r') as base:
        with pytest.raises(LareqaDataError) as info:
            fetch(f'{base}/en.json', '9ea5e240816f8a9c668ec49afbf45e7d', dest)
    message = str(info.value)
    assert 'failed its md5 check' in message and str(dest) in message and '\n' not in message
    assert list(tmp_path.iterdir()) == []  # no file, no .tmp, no folders


def test_download_failure_names_the_expected_path(tmp_path, monkeypatch):
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    monkeypatch.setenv('IR_DATASETS_DL_TRIES', '1')
    with _server(tmp_path) as base:
        pass  # the port is closed again: connection refused
    dest = tmp_path / 'cache' / 'xquad-r' / 'en.json'
    with pytest.raises(LareqaDataError) as info:
        fetch(f'{base}/en.json', None, dest)
    message = str(info.value)
    assert message.startswith(f'could not download {base}/en.json') and f'put the file at {dest}' in message
    assert '\n' not in message and not (tmp_path / 'cache').exists()


# --------------------------------------------------------------------------- export


def test_export_into_a_missing_directory(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    with pytest.raises(FileNotFoundError, match=f'output directory does not exist: {tmp_path}/missing'):
        export_setting('lareqa/mlqa-r/en', tmp_path / 'missing' / 'en')
    assert list(tmp_path.iterdir()) == []


@contextlib.contextmanager
def _read_only(folder: Path):
    """chmod 555; as root (which ignores modes) set the immutable attribute instead."""
    if os.geteuid() == 0:
        subprocess.run(['chattr', '+i', str(folder)], check=True)
        try:
            yield folder
        finally:
            subprocess.run(['chattr', '-i', str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


def test_export_into_a_read_only_directory(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    locked = tmp_path / 'locked'
    (locked / 'en').mkdir(parents=True)
    with _read_only(locked), _read_only(locked / 'en'):
        with pytest.raises(PermissionError, match=f'output directory is not writable: {locked}'):
            export_setting('lareqa/mlqa-r/en', locked / 'new')
        with pytest.raises(PermissionError, match=f'output directory is not writable: {locked}/en'):
            export_setting('lareqa/mlqa-r/en', locked / 'en')
    assert [p.name for p in locked.iterdir()] == ['en'] and list((locked / 'en').iterdir()) == []


def test_export_of_bad_data_leaves_nothing(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(data_dir))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    _edit(data_dir, 'de', lambda d: _para(d).pop('sentence_breaks'))
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(LareqaDataError, match='sentence_breaks is missing'):
        export_setting('lareqa/mlqa-r/en-de', out / 'en-de')
    with pytest.raises(LareqaDataError, match='sentence_breaks is missing'):
        export_setting('lareqa/mlqa-r/en-de', out)
    assert list(out.iterdir()) == []


def test_cli_errors_are_one_line_with_exit_code_2(data_dir, tmp_path):
    env = dict(os.environ, PYSERINI_HYBRID_DATA=str(data_dir), PYSERINI_HYBRID_VERIFY='0')
    path = _edit(data_dir, 'en', lambda d: _para(d)['qas'][0]['answers'][0].update(answer_start=10 ** 6))
    out = tmp_path / 'out'
    cases = [(['export', 'lareqa/mlqa-r/xx', '--output-dir', str(out)], "unknown dataset id 'lareqa/mlqa-r/xx'"),
             (['export', 'lareqa/mlqa-r/en', '--output-dir', str(out)], f'{path}: data[0].paragraphs[0].qas[0]')]
    code = ('import sys; from pyserini_hybrid.datasets.__main__ import main\n'
            'for argv in sys.argv[1].split("|"):\n'
            '    try:\n        main(argv.split())\n'
            '    except SystemExit as exc:\n        print("rc", exc.code, file=sys.stderr)\n')
    result = subprocess.run([sys.executable, '-c', code, '|'.join(' '.join(a) for a, _ in cases)],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    lines = result.stderr.splitlines()
    assert len(lines) == 4, result.stderr
    for (_, expected), (error, rc) in zip(cases, zip(lines[::2], lines[1::2])):
        assert error.startswith('error: ') and expected in error and rc == 'rc 2'
    assert not out.exists()
