"""The ``onnx-int8`` backend: a model's transformer exported to ONNX, fused by onnxruntime's
transformer optimizer and quantised to dynamic int8, run by onnxruntime.

Only the transformer runs in onnxruntime; the sentence-transformers modules after it (pooling,
normalisation) run unchanged on its output, so pooling stays exactly the model's. The recipe, each
step measured on XQuAD-R text against plain sentence-transformers fp32 (bench/bench_encode.py):

- ``torch.onnx.export`` of the Hugging Face model with eager attention (SDPA exports to a graph the
  optimizer cannot fuse), opset 17;
- ``onnxruntime.transformers.optimizer.optimize_model`` fuses attention, skip/embedding layer norms
  and bias-GELU (fp32 alone: ~1.3x on 2 AVX2 cores);
- ``onnxruntime.quantization.quantize_dynamic`` to int8 with per-tensor weight scales (per-channel
  was slower, static QDQ slower still), leaving the FFN down-projections fp32: they read the GELU
  output, whose outliers cost ~0.01-0.02 of cosine when quantised (min cosine to fp32 .976 -> .997).

The exported file is cached beside the model when its directory is writable (else under
``<cache>/onnx/``), named by the model fingerprint, the recipe version and the onnxruntime version.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pyserini_hybrid.encoders._registry import EncoderError

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.encoders._model import Encoder

__all__ = ['ONNX_RECIPE_VERSION', 'OnnxTransformer', 'export_onnx_int8', 'load_onnx_int8', 'onnx_model_path']

ONNX_RECIPE_VERSION = 1   # bump when the export recipe changes: the cached file name carries it
_OPSET = 17


def onnx_model_path(encoder: 'Encoder') -> Path:
    """Where ``encoder``'s int8 ONNX file lives (it may not exist yet)."""
    import onnxruntime

    from pyserini_hybrid.encoders._bias import _model_dir
    from pyserini_hybrid.encoders._offline import cache_dir

    name = f'onnx-int8-{encoder.fingerprint[:16]}-v{ONNX_RECIPE_VERSION}-ort{onnxruntime.__version__}.onnx'
    here = _model_dir(encoder)
    return (here / name) if here is not None else cache_dir() / 'onnx' / name


def _transformer(model):
    """The Hugging Face model inside a sentence-transformers model's first (Transformer) module."""
    first = model[0]
    hf = getattr(first, 'auto_model', None) or getattr(first, 'model', None)
    if hf is None or not hasattr(hf, 'config'):
        raise EncoderError(f"precision 'onnx-int8' needs a Hugging Face transformer as the first module, "
                           f"got {type(first).__name__}")
    return hf


def _export_fp32(hf, path: Path) -> None:
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    previous = getattr(hf.config, '_attn_implementation', None)
    hf.set_attn_implementation('eager')   # SDPA exports to a graph the optimizer cannot fuse
    try:
        ids = torch.ones(2, 8, dtype=torch.long)
        with torch.inference_mode():
            torch.onnx.export(LastHidden(hf).eval(), (ids, torch.ones_like(ids)), str(path),
                              input_names=['input_ids', 'attention_mask'], output_names=['last_hidden_state'],
                              dynamic_axes={'input_ids': {0: 'batch', 1: 'sequence'},
                                            'attention_mask': {0: 'batch', 1: 'sequence'},
                                            'last_hidden_state': {0: 'batch', 1: 'sequence'}},
                              opset_version=_OPSET, dynamo=False)
    finally:
        if previous is not None:
            hf.set_attn_implementation(previous)


def _down_projections(path: Path, intermediate: int, hidden: int) -> list[str]:
    """The MatMul nodes whose weight is ``[intermediate, hidden]``: the FFN down-projections."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [node.name for node in graph.node if node.op_type == 'MatMul'
            and any(shapes.get(name) == (intermediate, hidden) for name in node.input)]


def export_onnx_int8(model, path: str | os.PathLike) -> Path:
    """Export a sentence-transformers model's transformer to a fused, dynamic-int8 ONNX file.

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        The model; its first module must wrap a Hugging Face transformer (BERT-like: the optimizer's
        ``bert`` fusions also cover RoBERTa / XLM-R encoders).
    path : path-like
        The file to write; written atomically (a temporary file renamed into place).

    Returns
    -------
    Path
        ``path``.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    hf = _transformer(model)
    config = hf.config
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix='.onnx-export-') as tmp, _quiet():
        plain, fused, quantised = (Path(tmp) / name for name in ('plain.onnx', 'fused.onnx', 'int8.onnx'))
        _export_fp32(hf, plain)
        optimised = optimize_model(str(plain), model_type='bert', num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size)
        optimised.save_model_to_file(str(fused))
        keep_fp32 = _down_projections(fused, config.intermediate_size, config.hidden_size)
        quantize_dynamic(str(fused), str(quantised), per_channel=False, weight_type=QuantType.QInt8,
                         nodes_to_exclude=keep_fp32, extra_options={'DefaultTensorType': onnx.TensorProto.FLOAT})
        os.replace(quantised, path)
    return path


@contextlib.contextmanager
def _quiet():
    # the tracer's and the quantizer's advice (TracerWarnings, "consider pre-processing") is not for users
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        root.setLevel(level)


class OnnxTransformer:
    """An onnxruntime session standing in for a sentence-transformers Transformer module's forward.

    Parameters
    ----------
    path : path-like
        An ONNX file from :func:`export_onnx_int8`.
    threads : int
        onnxruntime's intra-op threads (the Encoder passes torch's, so both backends use the same).
    """

    def __init__(self, path: str | os.PathLike, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3   # the fused graph's shape-inference notices are not errors
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file is one line
            raise EncoderError(f"cannot load ONNX model {path}: {' '.join(str(exc).split())[:200]} "
                               f"(delete it to re-export)") from None

    def __call__(self, features: dict) -> dict:
        """Fill ``features['token_embeddings']`` from ``input_ids`` and ``attention_mask``."""
        import torch

        feed = {name: features[name].cpu().numpy().astype(np.int64) for name in ('input_ids', 'attention_mask')}
        (hidden,) = self.session.run(['last_hidden_state'], feed)
        features['token_embeddings'] = torch.from_numpy(hidden)
        return features


def load_onnx_int8(encoder: 'Encoder', threads: int) -> OnnxTransformer:
    """The encoder's int8 ONNX session, exporting the model first when no cached file exists."""
    path = onnx_model_path(encoder)
    if not path.is_file():
        export_onnx_int8(encoder.model, path)
    return OnnxTransformer(path, threads)

