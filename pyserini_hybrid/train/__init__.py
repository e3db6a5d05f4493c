"""Hybrid-batch training of multilingual dense encoders (arXiv 2408.10536) on sentence-transformers.

One command re-makes a model from its recipe::

    python -m pyserini_hybrid.train --recipe encoders/me5-small-hybrid.yaml

The pieces, each usable on its own:

- corpus adapters (:data:`ADAPTERS`, :func:`load_source`; ``_corpora.py``, the one registry to add a
  corpus to) turning ``../shared/data/train`` corpora into :class:`PairTable` source datasets
  (``_data.py``; parallel pairs give mono and cross rows), read through ``_files.py`` and split into
  sentences by ``_sentences.py``;
- batch samplers on sentence-transformers' sampler API: :class:`PairBatchSampler` per source and
  :class:`HybridBatchSampler` (:class:`MonoBatchSampler`, :class:`CrossBatchSampler`) choosing
  each batch's kind, language and source;
- losses beyond sentence-transformers' own (``_losses.py``): :class:`TranslationDistillLoss` and
  :class:`PairsOrDistillLoss`, for recipe sources with ``objective: distill``;
- strict recipes (:func:`load_recipe`), the zero-shot hygiene check (:func:`check_zero_shot`) and
  :func:`train`, a thin set-up of ``SentenceTransformerTrainer`` (``batch_log=`` / ``--batch-log``
  records, through :class:`BatchRecorder`, the sources and languages of every batch it trained on).

Importing this package does not import torch or sentence-transformers; the submodules that need
them load on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pyserini_hybrid._versions import check_versions

check_versions()  # one clear line, before a submodule fails on an old sentence-transformers

# (imports after the version check: E402)
from pyserini_hybrid.train._corpora import ADAPTERS, adapter_options, load_source  # noqa: E402
from pyserini_hybrid.train._data import (ALL_LANGUAGES, TRAIN_DATA_ENV, TRAIN_LANGUAGES,  # noqa: E402
                                         ZERO_SHOT_LANGUAGES, PairTable, TrainDataError, default_train_dir,
                                         normalize_text, pair_table)
from pyserini_hybrid.train._hygiene import (Overlap, ZeroShotLeakError, available_collections,  # noqa: E402
                                            check_zero_shot, drop_overlapping, eval_index, find_overlaps)

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.train._recipe import (STRATEGIES, DataEntry, Recipe, RecipeError, Validation, load_recipe,
                                               parse_recipe)
    from pyserini_hybrid.train._losses import PairsOrDistillLoss, TranslationDistillLoss
    from pyserini_hybrid.train._samplers import (CrossBatchSampler, HybridBatchSampler, MonoBatchSampler,
                                                 PairBatchSampler, make_samplers)
    from pyserini_hybrid.train._trainer import (BatchRecorder, TrainError, TrainResult, checkpoint_dir,
                                                last_checkpoint, train)

__all__ = ['ADAPTERS', 'ALL_LANGUAGES', 'TRAIN_DATA_ENV', 'TRAIN_LANGUAGES', 'ZERO_SHOT_LANGUAGES', 'STRATEGIES',
           'BatchRecorder', 'CrossBatchSampler', 'DataEntry', 'HybridBatchSampler', 'MonoBatchSampler', 'Overlap',
           'PairBatchSampler', 'PairTable', 'PairsOrDistillLoss', 'Recipe', 'RecipeError', 'TrainDataError',
           'TrainError', 'TrainResult', 'TranslationDistillLoss', 'Validation', 'ZeroShotLeakError',
           'adapter_options', 'available_collections', 'check_zero_shot', 'checkpoint_dir', 'default_train_dir',
           'drop_overlapping', 'eval_index', 'find_overlaps', 'last_checkpoint', 'load_recipe', 'load_source',
           'make_samplers', 'normalize_text', 'pair_table', 'parse_recipe', 'train']

# The samplers and the trainer import sentence-transformers (and torch): loaded on first use.
_LAZY = {'STRATEGIES': '_recipe', 'CrossBatchSampler': '_samplers', 'HybridBatchSampler': '_samplers',
         'MonoBatchSampler': '_samplers', 'PairBatchSampler': '_samplers', 'make_samplers': '_samplers',
         'DataEntry': '_recipe', 'Recipe': '_recipe', 'RecipeError': '_recipe', 'Validation': '_recipe',
         'load_recipe': '_recipe', 'parse_recipe': '_recipe',
         'PairsOrDistillLoss': '_losses', 'TranslationDistillLoss': '_losses',
         'BatchRecorder': '_trainer', 'TrainError': '_trainer', 'TrainResult': '_trainer',
         'checkpoint_dir': '_trainer', 'last_checkpoint': '_trainer', 'train': '_trainer'}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
