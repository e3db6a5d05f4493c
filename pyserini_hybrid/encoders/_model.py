"""The :class:`Encoder`: any registered or trained model as a sentence-transformers model, fast on CPU.

No JVM here: this is plain torch / sentence-transformers, used by embedding caches, training and
the Pyserini wrappers alike.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pyserini_hybrid.encoders._offline import check_model_dir, model_path, not_available_offline
from pyserini_hybrid.encoders._registry import PRECISIONS, TRAIN_PRECISIONS, EncoderError, ModelSpec, get_spec

__all__ = ['Encoder', 'SmoothedInt8Linear', 'native_bf16', 'quantize_int8', 'resolve_precision']


@functools.lru_cache(maxsize=None)   # read once: native_bf16 runs for every Encoder
def _cpu_flags() -> frozenset[str] | None:
    """The CPU feature flags of /proc/cpuinfo (Linux), or None where there is no such file."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as handle:
            for line in handle:
                if line.startswith('flags'):
                    return frozenset(line.partition(':')[2].split())
    except OSError:
        return None
    return None


def native_bf16() -> bool:
    """Whether this machine runs bfloat16 matrix products natively (AVX512-BF16 or AMX).

    oneDNN's own check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) also says yes on AVX-512 CPUs
    without AVX512-BF16, where bf16 is emulated and several times slower than fp32; on Linux the CPU
    flags decide.
    """
    flags = _cpu_flags()
    if flags is not None:
        return bool({'avx512_bf16', 'amx_bf16'} & flags)
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: str | torch.device | None = None, *,
                      for_training: bool = False) -> str:
    """The precision to run at: ``precision`` itself, or what ``'auto'`` means on ``device``.

    ``'auto'`` never picks an emulated format: ``'bf16'`` on a CPU with native bfloat16
    (:func:`native_bf16`) or a CUDA device that supports it; elsewhere ``'int8'`` for inference
    on CPU (the SmoothQuant dynamic int8 of :func:`quantize_int8`, measured 1.4-1.5x plain
    sentence-transformers fp32 at equal retrieval quality) and ``'fp32'`` for training and on other devices.

    Parameters
    ----------
    precision : str
        One of :data:`PRECISIONS` (``'auto'``, ``'fp32'``, ``'bf16'``, ``'int8'``, ``'onnx-int8'``).
    device : str or torch.device, optional
        Where the model runs; default the device sentence-transformers picks (a GPU when present).
    for_training : bool
        Resolve for training, where ``'int8'`` does not exist.

    Returns
    -------
    str
        ``precision`` when it is not ``'auto'``; else ``'fp32'``, ``'bf16'`` or ``'int8'``.

    Raises
    ------
    EncoderError
        An unknown precision, or ``'int8'`` for training (one line).
    """
    allowed = TRAIN_PRECISIONS if for_training else PRECISIONS
    if precision not in allowed:
        raise EncoderError(f"precision must be one of {', '.join(allowed)}, got {precision!r}")
    if precision != 'auto':
        return precision
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    kind = torch.device(device).type
    if kind == 'cuda':
        return 'bf16' if torch.cuda.is_bf16_supported() else 'fp32'
    if kind == 'cpu':
        if native_bf16():
            return 'bf16'
        return 'fp32' if for_training else 'int8'
    return 'fp32'


class Encoder:
    """Embed queries and passages with one model, following its :class:`ModelSpec`.

    Parameters
    ----------
    name_or_path : str
        A registry name (see :func:`list_encoders`) or a model directory holding ``pyserini_hybrid.json``.
    batch_size : int
        Texts per forward pass. Texts are sorted by token length first, so a batch holds texts
        of nearly equal length and little padding is computed.
    precision : str
        ``'auto'`` (default: the fastest non-emulated precision of the device, see
        :func:`resolve_precision`); ``'fp32'``; ``'bf16'`` (autocast of matrix products to
        bfloat16: fast only on CPUs with AVX512-BF16/AMX or on GPUs); ``'int8'`` (CPU only:
        dynamic int8 quantisation of the Linears with SmoothQuant-style scaling; FFN
        down-projections stay fp32; see :func:`quantize_int8`); ``'onnx-int8'`` (CPU only: the
        transformer exported once to a fused, dynamic-int8 ONNX graph run by onnxruntime, pooling
        by the model's own modules; see :mod:`pyserini_hybrid.encoders._onnx`).
    threads : int, optional
        Sets ``torch.set_num_threads`` (process-wide). Default: torch's own (one per core).
    device : str, optional
        ``'cpu'``, ``'cuda'``...; default lets sentence-transformers choose.
    task : str, optional
        Fills ``{task}`` in the spec's ``query_instruction`` template, when it has one (then it is
        required: :class:`EncoderError` without it); ignored otherwise.
    trust_remote_code : bool
        Allow model repositories' own Python code. Off unless asked.

    Attributes
    ----------
    spec : ModelSpec
    precision : str
        The precision it runs at (``'auto'`` resolved); ``requested_precision`` is the one asked for.
    dim : int
        Embedding dimension.
    fingerprint : str
        SHA-256 of the weights, tokenizer, module configs, spec and precision: equal across
        processes for the same model, so it keys embedding caches.
    model : sentence_transformers.SentenceTransformer
    """

    def __init__(self, name_or_path: str, *, batch_size: int = 32, precision: str = 'auto',
                 threads: int | None = None, device: str | None = None, task: str | None = None,
                 trust_remote_code: bool = False) -> None:
        if precision not in PRECISIONS:
            raise EncoderError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if batch_size <= 0:
            raise EncoderError(f"batch size must be positive, got {batch_size}")
        if threads is not None:
            if threads <= 0:
                raise EncoderError(f"threads must be positive, got {threads}")
            torch.set_num_threads(threads)
        self.spec: ModelSpec = get_spec(name_or_path)
        self.batch_size = batch_size
        self.requested_precision = precision
        self.query_prefix = self.spec.query_text_prefix(task)
        self.passage_prefix = self.spec.passage_prefix
        self.model = load_sentence_transformer(model_path(name_or_path), self.spec, device, trust_remote_code)
        if self.model.max_seq_length is None or self.model.max_seq_length > self.spec.max_length:
            self.model.max_seq_length = self.spec.max_length
        self.dim: int = int(self.model.get_embedding_dimension())
        # resolved before the fingerprint: caches are keyed by what actually runs
        self.precision: str = resolve_precision(precision, self.model.device)
        self.fingerprint: str = self._fingerprint()
        self._autocast = self._set_precision(self.precision)

    def __repr__(self) -> str:
        return (f"Encoder({self.spec.name!r}, precision={self.precision!r}, batch_size={self.batch_size}, "
                f"dim={self.dim}, fingerprint={self.fingerprint[:12]})")

    @property
    def device(self) -> torch.device:
        return self.model.device

    # -- set-up ----------------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        spec = {k: v for k, v in self.spec.to_dict().items() if k not in ('name', 'model')}
        digest.update(json.dumps([spec, self.precision, self.query_prefix, self.model.max_seq_length],
                                 sort_keys=True).encode())
        for index, module in enumerate(self.model):
            config = module.get_config_dict() if hasattr(module, 'get_config_dict') else {}
            digest.update(json.dumps([index, type(module).__name__, config], sort_keys=True, default=str).encode())
        tokenizer = self.model.tokenizer
        backend = getattr(tokenizer, 'backend_tokenizer', None)
        digest.update((backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items())))
                      .encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            tensor = tensor.detach().to('cpu').contiguous()
            digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)}'.encode())
            digest.update(tensor.view(torch.uint8).numpy() if tensor.numel() else b'')
        return digest.hexdigest()

    def _set_precision(self, precision: str):
        self.int8_layers: list[str] = []
        self._onnx = None
        if precision == 'onnx-int8':
            if self.model.device.type != 'cpu':
                raise EncoderError("precision 'onnx-int8' runs on CPU only")
            from pyserini_hybrid.encoders._onnx import load_onnx_int8

            self._onnx = load_onnx_int8(self, torch.get_num_threads())
            self._after_transformer = list(self.model)[1:]   # pooling, normalisation: the model's own
        elif precision == 'int8':
            if self.model.device.type != 'cpu':
                raise EncoderError("precision 'int8' (dynamic quantisation) runs on CPU only")
            self.int8_layers = quantize_int8(self.model)
        elif precision == 'bf16':
            if self.model.device.type == 'cpu' and not native_bf16():
                warnings.warn("this CPU has no native bfloat16 (AVX512-BF16/AMX): precision 'bf16' "
                              "will be emulated and slow", RuntimeWarning, stacklevel=3)
            return lambda: torch.autocast(device_type=self.model.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext

    # -- encoding --------------------------------------------------------------------------------

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed queries (query prefix or instruction applied): float32 ``[n, dim]``."""
        return self._encode(texts, self.query_prefix, show_progress)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed passages (passage prefix applied): float32 ``[n, dim]``."""
        return self._encode(texts, self.passage_prefix, show_progress)

    def _encode(self, texts: Sequence[str], prefix: str, show_progress: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("expected a sequence of texts, got one str: wrap it in a list")
        # Surrounding whitespace would add a lone "▁" token in SentencePiece vocabularies.
        inputs = [prefix + text.strip() for text in texts]
        out = np.empty((len(inputs), self.dim), dtype=np.float32)
        if not inputs:
            return out
        order = self._length_order(inputs)
        from sentence_transformers.util import batch_to_device
        from tqdm.auto import tqdm

        starts = range(0, len(order), self.batch_size)
        with torch.inference_mode(), self._autocast():
            for start in tqdm(starts, desc='Encoding', unit='batch', disable=not show_progress):
                idx = order[start:start + self.batch_size]
                features = self.model.preprocess([inputs[i] for i in idx])
                features = batch_to_device(features, self.model.device)
                if self._onnx is not None:   # the transformer in onnxruntime, pooling as the model's own
                    features = self._onnx(features)
                    for module in self._after_transformer:
                        features = module(features)
                    embeddings = features['sentence_embedding']
                else:
                    embeddings = self.model(features)['sentence_embedding']
                out[idx] = embeddings.float().cpu().numpy()
        if self.spec.normalize:
            # Idempotent when the model ends in a Normalize module; required when it does not.
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _length_order(self, inputs: list[str]) -> np.ndarray:
        """Indices sorted by token count, longest first (a too-long batch fails early, not late)."""
        tokenizer = self.model.tokenizer
        encoded = tokenizer(inputs, add_special_tokens=True, truncation=True, max_length=self.model.max_seq_length,
                            return_attention_mask=False, return_token_type_ids=False)
        lengths = np.fromiter((len(ids) for ids in encoded['input_ids']), dtype=np.int64, count=len(inputs))
        return np.argsort(-lengths, kind='stable')


# -- int8 ------------------------------------------------------------------------------------------
# Plain dynamic quantisation of every Linear costs me5-small ~0.02 of cosine to fp32: activations are
# quantised per tensor (7 bits on x86) and transformer activations have outlier channels and tokens.
# Two measured remedies (cosine to fp32 on XQuAD-R: 0.978 -> 0.9995):
# - SmoothQuant-style scaling (alpha 0.7) moves per-channel activation outliers into the weights,
#   which are quantised per output channel;
# - FFN down-projections (in_features > out_features) stay fp32: they read the GELU output, whose
#   outliers sit on a few tokens, which no per-channel scale can fix.
# Calibration is data-free (seeded random token sequences), so the result is reproducible.
_SMOOTH_ALPHA = 0.7
_CALIBRATION = (16, 32)      # sequences x random tokens


class SmoothedInt8Linear(torch.nn.Module):
    """``linear(x)`` computed as ``int8_linear(x / s)`` with ``W * s`` quantised per output channel."""

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor) -> None:
        super().__init__()
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        from torch.ao.quantization import per_channel_dynamic_qconfig

        smoothed = torch.nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            smoothed.weight.copy_(linear.weight * scale)
            if linear.bias is not None:
                smoothed.bias.copy_(linear.bias)
        smoothed.qconfig = per_channel_dynamic_qconfig
        self.register_buffer('inv_scale', (1.0 / scale).to(torch.float32))
        self.int8 = DynamicLinear.from_float(smoothed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.int8(x * self.inv_scale)


def _calibration_texts(tokenizer) -> list[str]:
    generator = torch.Generator().manual_seed(0)
    special = set(tokenizer.all_special_ids)
    n, length = _CALIBRATION
    rows = torch.randint(0, len(tokenizer), (n, length), generator=generator).tolist()
    return [tokenizer.decode([i for i in row if i not in special]) for row in rows]


def quantize_int8(model, alpha: float = _SMOOTH_ALPHA) -> list[str]:
    """Swap a sentence-transformers model's Linears for smoothed dynamic-int8 ones, in place.

    Returns the names of the quantised Linears; FFN down-projections stay fp32.
    """
    linears = {name: module for name, module in model.named_modules()
               if type(module) is torch.nn.Linear and module.in_features <= module.out_features}
    amax: dict[str, torch.Tensor] = {}

    def record(name: str, x: torch.Tensor) -> None:
        channel_max = x.detach().abs().reshape(-1, x.shape[-1]).amax(0)
        amax[name] = torch.maximum(amax[name], channel_max) if name in amax else channel_max

    handles = [module.register_forward_hook(lambda m, inputs, output, name=name: record(name, inputs[0]))
               for name, module in linears.items()]
    try:
        with torch.inference_mode():
            model(model.preprocess(_calibration_texts(model.tokenizer)))
    finally:
        for handle in handles:
            handle.remove()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # torch.ao.quantization's deprecation notices
        for name, module in linears.items():
            if name not in amax:          # not used in a text forward pass
                continue
            w_max = module.weight.detach().abs().amax(0).clamp(min=1e-5)
            scale = (amax[name].clamp(min=1e-5) ** alpha / w_max ** (1 - alpha)).clamp(min=1e-5)
            parent, _, child = name.rpartition('.')
            setattr(model.get_submodule(parent) if parent else model, child, SmoothedInt8Linear(module, scale))
    return sorted(amax)


def load_sentence_transformer(path: Path | str, spec: ModelSpec, device: str | None = None,
                              trust_remote_code: bool = False):
    """A SentenceTransformer for ``path``: its own modules when it is one, else built from ``spec``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import is_sentence_transformer_model

    hub = not isinstance(path, Path)
    # safetensors only: pickled checkpoints can run code when loaded.
    kwargs = dict(device=device, trust_remote_code=trust_remote_code, model_kwargs={'use_safetensors': True})
    try:
        # transformers reports the pooler it initialises at random; _drop_untrained_pooler removes it
        with _quiet_transformers():
            if is_sentence_transformer_model(str(path)):
                model = SentenceTransformer(str(path), **kwargs)
            else:
                model = SentenceTransformer(modules=_modules_from_spec(str(path), spec, trust_remote_code),
                                            device=device)
        if not hub:
            _drop_untrained_pooler(model, Path(path))
        return model
    except EncoderError:
        raise
    except Exception as exc:  # noqa: BLE001 - hub/network/file errors become one line
        reason = ' '.join(str(exc).split())[:300] or type(exc).__name__
        if hub:
            raise not_available_offline(str(path), f"loading from the Hugging Face hub failed ({reason})") from None
        check_model_dir(path)  # names missing files, when that is the cause
        raise EncoderError(f"cannot load model {path}: {reason}") from None


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _drop_untrained_pooler(model, path: Path) -> None:
    """Remove a BERT pooler that the checkpoint does not hold.

    transformers initialises a missing pooler at random; mean pooling never uses it, but its random
    weights would change the model's fingerprint (and so the embedding cache key) in every process and
    be saved into every fine-tuned checkpoint.
    """
    from safetensors import safe_open

    weights = sorted(path.glob('*.safetensors')) or sorted(path.glob('*/model.safetensors'))
    saved: set[str] = set()
    for file in weights:
        with safe_open(str(file), 'pt') as handle:
            saved.update(handle.keys())
    if not saved or any('pooler.' in key for key in saved):
        return
    for module in model.modules():
        if isinstance(getattr(module, 'pooler', None), torch.nn.Module):
            module.pooler = None   # BertModel.forward skips a None pooler


def _modules_from_spec(path: str, spec: ModelSpec, trust_remote_code: bool) -> list:
    """Transformer + Pooling (+ Normalize) for a plain Hugging Face checkpoint (e.g. mDPR)."""
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(path, max_seq_length=spec.max_length,
                              model_kwargs={'use_safetensors': True, 'trust_remote_code': trust_remote_code},
                              processor_kwargs={'trust_remote_code': trust_remote_code})
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=spec.pooling)]
    if spec.normalize:
        modules.append(Normalize())
    return modules
