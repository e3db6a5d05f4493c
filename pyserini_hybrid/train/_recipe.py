"""Training recipes: strict YAML -> :class:`Recipe`.

A recipe names the base model, the strategy (``mono`` / ``cross`` / ``hybrid``) and ``alpha``, the
training languages, the corpora (``data``: one entry per source dataset, with adapter options) and
the hyper-parameters, so a model is re-made by one command::

    python -m pyserini_hybrid.train --recipe encoders/me5-small-hybrid.yaml

Unknown keys and wrong types are errors: one line naming the file, the line and the key.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyserini_hybrid._yaml import TYPE_WORDS, at, build_fields, coerce, compose, describe
from pyserini_hybrid.encoders import TRAIN_PRECISIONS as PRECISIONS
from pyserini_hybrid.train._corpora import ADAPTERS, adapter_options
from pyserini_hybrid.train._data import ALL_LANGUAGES, TRAIN_LANGUAGES

__all__ = ['RecipeError', 'DataEntry', 'Validation', 'Recipe', 'load_recipe', 'parse_recipe', 'LOSSES', 'OBJECTIVES',
           'STRATEGIES', 'STRATEGY_MONO_PROB', 'strategy_alpha']

LOSSES = ('mnrl', 'cached-mnrl')
# What a data entry's batches train: in-batch pair ranking (the recipe's loss), or translation
# distillation toward the frozen base model's embedding of the item's English text.
OBJECTIVES = ('pairs', 'distill')
# The batch strategies, by recipe / --strategy name: the probability of a mono batch, None where the
# recipe's alpha gives it. Add a strategy here; the samplers read only the probability.
STRATEGY_MONO_PROB: dict[str, float | None] = {'mono': 1.0, 'cross': 0.0, 'hybrid': None}
STRATEGIES = tuple(STRATEGY_MONO_PROB)
# PRECISIONS (from encoders): bf16 = autocast mixed precision (fp32 master weights), ~2x on CPUs with
# AMX/AVX512-BF16; auto = bf16 where native (such a CPU, a GPU), fp32 elsewhere (encoders.resolve_precision).


def strategy_alpha(strategy: str, alpha: float) -> float:
    """Probability of a mono batch for ``strategy`` (``alpha`` only matters for ``hybrid``)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choices: {', '.join(STRATEGIES)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    fixed = STRATEGY_MONO_PROB[strategy]
    return alpha if fixed is None else fixed


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file, line and key."""


@dataclass(frozen=True)
class DataEntry:
    """One source dataset of a recipe.

    Attributes
    ----------
    corpus : str
        Adapter name (see ``pyserini_hybrid.train.ADAPTERS``).
    name : str or None
        Source name (default: the corpus name); must be unique within a recipe.
    weight : float
        Multiplies the source's size when batches choose their source.
    share : float or None
        Fixed probability, in (0, 1), that a batch is this source's own batch, whatever its size
        (its ``weight`` is then not used); the sources without a share split the rest by size x
        weight. The shares of a recipe sum to less than 1.
    task : str or None
        Task description for an instruction template on queries (E5-instruct).
    drop_eval_overlap : bool
        Drop items holding evaluation text instead of refusing to train (WikiQA has a few).
    objective : str
        ``'pairs'`` (default): the source's rows are (query, positive) pairs for the recipe's loss.
        ``'distill'``: each row's positive text is a translation; its embedding (passage side) is
        pulled toward the frozen base model's embedding of the item's English text (squared L2
        between unit vectors, ``2 (1 - cos)``), which aligns languages while English stays where
        the base model put it. The source must have English; single-process training only.
    options : dict
        Adapter keyword options (e.g. ``splits``, ``mode``), checked against the adapter.
    """

    corpus: str
    name: str | None = None
    weight: float = 1.0
    share: float | None = None
    task: str | None = None
    drop_eval_overlap: bool = False
    objective: str = 'pairs'
    options: dict = field(default_factory=dict)

    @property
    def source_name(self) -> str:
        return self.name or self.corpus


@dataclass(frozen=True)
class Validation:
    """Held-out *training* items for the validation loss (never XQuAD-R / MLQA-R).

    Attributes
    ----------
    fraction : float
        Share of each source's items held out (0 disables validation).
    max_items : int
        At most this many items held out per source.
    batches : int
        Number of fixed validation batches (built once with the training strategy).
    eval_steps : int
        Evaluate (and checkpoint) every this many steps.
    patience : int
        Early stopping after this many evaluations without improvement (0: never stop early).
    """

    fraction: float = 0.02
    max_items: int = 100
    batches: int = 8
    eval_steps: int = 100
    patience: int = 0


@dataclass(frozen=True)
class Recipe:
    """Everything a training run depends on (besides the data files and the code)."""

    name: str
    data: tuple[DataEntry, ...]
    base: str = 'me5-small-offline'
    strategy: str = 'hybrid'
    alpha: float = 0.5
    languages: tuple[str, ...] = TRAIN_LANGUAGES
    max_steps: int = 600
    batch_size: int = 32
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    scale: float = 20.0
    max_length: int = 64
    freeze_embeddings: bool = True
    hard_negatives: bool = True
    loss: str = 'mnrl'
    mini_batch_size: int = 16
    precision: str = 'auto'
    query_instruction: str | None = None
    seed: int = 42
    save_steps: int = 100
    logging_steps: int = 10
    output: str | None = None
    validation: Validation = field(default_factory=Validation)

    @property
    def output_dir(self) -> Path:
        return Path(self.output or os.path.join('models', self.name))

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out['languages'] = list(self.languages)
        # an unset share and the default objective are left out: snapshots of earlier runs
        # (checkpoints, experiment markers) still match
        out['data'] = [{k: v for k, v in e.items() if not (k == 'share' and v is None)
                        and not (k == 'objective' and v == 'pairs')} for e in out['data']]
        return out

    def with_overrides(self, where: str = 'command line', **overrides: Any) -> 'Recipe':
        """A copy with some top-level fields replaced (``None`` values are ignored), re-validated."""
        values = {k: v for k, v in overrides.items() if v is not None}
        for key, value in values.items():
            _check_value(Recipe, key, value, where, key)
        recipe = dataclasses.replace(self, **values)
        _validate(recipe, where, {})
        return recipe


# ------------------------------------------------------------------------------------------------
# strict parsing


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read a recipe file.

    Raises
    ------
    RecipeError
        Missing file, invalid YAML, unknown keys, wrong types or invalid values (one line, with file
        and line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        raise RecipeError(f"recipe not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read recipe ({exc})") from None
    return parse_recipe(text, str(path))


def parse_recipe(text: str, where: str = '<recipe>') -> Recipe:
    """Parse recipe YAML text; ``where`` names it in error messages."""
    data, lines = compose(text, where, RecipeError, 'recipe')
    recipe = Recipe(**build_fields(Recipe, data, '', where, lines, RecipeError,
                                   custom={'data': lambda value: _build_data(value, where, lines)}))
    _validate(recipe, where, lines)
    return recipe


def _check_value(cls: type, key: str, value: Any, where: str, label: str) -> Any:
    """Check ``value`` against ``cls.key``'s type; return it converted (lists -> tuples)."""
    return coerce(typing.get_type_hints(cls)[key], value, where, label, RecipeError)


def _build_data(value: Any, where: str, lines: dict[str, int]) -> tuple[DataEntry, ...]:
    if not isinstance(value, list) or not value:
        raise RecipeError(f"{at(where, lines, 'data')}: 'data' must be a non-empty list of corpora, "
                          f"got {describe(value)}")
    entries = []
    for i, item in enumerate(value):
        prefix = f'data[{i}]'
        loc = at(where, lines, prefix)
        if isinstance(item, str):
            item = {'corpus': item}
        if not isinstance(item, dict):
            raise RecipeError(f"{loc}: '{prefix}' must be a corpus name or a mapping, got {describe(item)}")
        corpus = item.get('corpus')
        if not isinstance(corpus, str):
            raise RecipeError(f"{loc}: '{prefix}.corpus' must name a corpus ({', '.join(sorted(ADAPTERS))})")
        if corpus not in ADAPTERS:
            raise RecipeError(f"{at(where, lines, prefix + '.corpus')}: unknown corpus {corpus!r} in "
                              f"'{prefix}.corpus' (choices: {', '.join(sorted(ADAPTERS))})")
        own = {f.name for f in dataclasses.fields(DataEntry)} - {'options'}
        options_spec = adapter_options(corpus)
        kwargs, options = {}, {}
        for key, val in item.items():
            label = f'{prefix}.{key}'
            kloc = at(where, lines, label)
            if key in own:
                kwargs[key] = _check_value(DataEntry, key, val, kloc, label)
            elif key in options_spec:
                kind, default = options_spec[key]
                if kind is list:
                    if isinstance(val, str):
                        val = [val]
                    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
                        raise RecipeError(f"{kloc}: '{label}' must be a list of strings, got {describe(val)}")
                elif kind in TYPE_WORDS:
                    val = coerce(kind, val, kloc, label, RecipeError)
                options[key] = val
            else:
                valid = sorted(own | set(options_spec))
                raise RecipeError(f"{kloc}: unknown key '{label}' for corpus {corpus!r} (valid keys: "
                                  f"{', '.join(valid)})")
        entries.append(DataEntry(options=options, **kwargs))
    return tuple(entries)


def _validate(recipe: Recipe, where: str, lines: dict[str, int]) -> None:
    def fail(key: str, message: str) -> None:
        raise RecipeError(f"{at(where, lines, key)}: {message}")

    if recipe.strategy not in STRATEGIES:
        fail('strategy', f"'strategy' must be one of {', '.join(STRATEGIES)}, got {recipe.strategy!r}")
    if not 0.0 <= recipe.alpha <= 1.0:
        fail('alpha', f"'alpha' must be between 0 and 1, got {recipe.alpha}")
    bad = [l for l in recipe.languages if l not in ALL_LANGUAGES]
    if bad or not recipe.languages:
        fail('languages', f"'languages' must be codes among {', '.join(ALL_LANGUAGES)}, got {bad or '[]'}")
    if recipe.loss not in LOSSES:
        fail('loss', f"'loss' must be one of {', '.join(LOSSES)}, got {recipe.loss!r}")
    if recipe.precision not in PRECISIONS:
        fail('precision', f"'precision' must be one of {', '.join(PRECISIONS)}, got {recipe.precision!r}")
    for key in ('max_steps', 'save_steps', 'logging_steps', 'max_length', 'mini_batch_size'):
        if getattr(recipe, key) < 1:
            fail(key, f"'{key}' must be >= 1, got {getattr(recipe, key)}")
    if recipe.batch_size < 2:
        fail('batch_size', f"'batch_size' must be >= 2 (in-batch negatives), got {recipe.batch_size}")
    for key in ('lr', 'scale'):
        if getattr(recipe, key) <= 0:
            fail(key, f"'{key}' must be > 0, got {getattr(recipe, key)}")
    if recipe.weight_decay < 0:
        fail('weight_decay', f"'weight_decay' must be >= 0, got {recipe.weight_decay}")
    if not 0.0 <= recipe.warmup < 1.0:
        fail('warmup', f"'warmup' (a share of the steps) must be in [0, 1), got {recipe.warmup}")
    v = recipe.validation
    if not 0.0 <= v.fraction < 0.5:
        fail('validation.fraction', f"'validation.fraction' must be in [0, 0.5), got {v.fraction}")
    for key in ('max_items', 'batches', 'eval_steps'):
        if getattr(v, key) < 1:
            fail(f'validation.{key}', f"'validation.{key}' must be >= 1, got {getattr(v, key)}")
    if v.patience < 0:
        fail('validation.patience', f"'validation.patience' must be >= 0, got {v.patience}")
    names = [e.source_name for e in recipe.data]
    for i, entry in enumerate(recipe.data):
        if names.count(entry.source_name) > 1:
            fail(f'data[{i}]', f"two data entries are named {entry.source_name!r}: give one a 'name'")
        if entry.weight < 0:
            fail(f'data[{i}].weight', f"'data[{i}].weight' must be >= 0, got {entry.weight}")
        if entry.share is not None and not 0.0 < entry.share < 1.0:
            fail(f'data[{i}].share', f"'data[{i}].share' must be in (0, 1), got {entry.share}")
        if entry.objective not in OBJECTIVES:
            fail(f'data[{i}].objective', f"'data[{i}].objective' must be one of {', '.join(OBJECTIVES)}, "
                                         f"got {entry.objective!r}")
        if entry.objective == 'distill' and 'en' not in recipe.languages:
            fail(f'data[{i}].objective', "objective 'distill' needs English (the teacher's text) in 'languages'")
    shares = [e.share for e in recipe.data if e.share is not None]
    if shares and sum(shares) >= 1.0:
        fail('data', f"the 'share' values of 'data' sum to {sum(shares):g}: they must sum to less than 1")
    if shares and len(shares) == len(recipe.data):
        fail('data', "every data entry has a 'share': leave one without, to take the other "
                     f"{1 - sum(shares):g} of the batches")
