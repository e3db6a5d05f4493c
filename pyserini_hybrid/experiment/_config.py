"""The experiment configuration: strict YAML -> :class:`ExperimentConfig`.

Unknown keys, wrong types and invalid values are errors with one line naming the file, the line
and the key. ``3e-5`` is read by YAML as text: write ``3.0e-5``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyserini_hybrid._yaml import at, build_fields, compose

__all__ = ['ARMS', 'DEFAULT_COMPARISONS', 'ExperimentError', 'Budget', 'InstructionOptions', 'EvalOptions',
           'ReportOptions', 'ExperimentConfig', 'load_config', 'parse_config']

# The arms the runner knows. Every trained arm starts from the same base model with the same
# budget (steps x batch size); the training data and batch strategy are what differ.
ARMS: dict[str, str] = {
    'base': 'the base model, not trained',
    'mono': "X-X-mono batches (every batch one language) over the recipe's corpora",
    'cross': "X-Y batches (every row a query and a positive in different languages) over the recipe's corpora",
    'hybrid': "hybrid batches (mono with probability alpha, else cross) over the recipe's corpora",
    'instruct-only': 'instruction pairs only (English, mono batches): instruction tuning alone',
    'hybrid+instruct': "hybrid batches over the recipe's corpora with the instruction pairs mixed in as one "
                       "more source (its own English batches, by size x weight or at a fixed share)",
    'instruct-then-hybrid': 'two stages: instruction tuning, then hybrid batches starting from its output '
                            '(the steps split between them)',
    'hybrid+instruct-e5': "hybrid+instruct's mix at another instruction share (instructions.e5_share), with "
                          'E5-instruct task instructions on the queries of every source (mode a) in this arm only',
}
DEFAULT_COMPARISONS: tuple[tuple[str, str], ...] = (('hybrid', 'hybrid+instruct'), ('instruct-only', 'hybrid+instruct'))


class ExperimentError(ValueError):
    """A configuration or state the runner cannot use; the message names the file (and line)."""


@dataclass(frozen=True)
class Budget:
    """The same for every trained arm.

    Attributes
    ----------
    max_steps : int
        Optimiser steps per arm (a two-stage arm splits them between its stages).
    batch_size : int
        Pairs per batch (in-batch negatives: batch_size - 1 per query).
    lr : float or None
        Learning rate (default: the recipe's).
    """

    max_steps: int = 150
    batch_size: int = 32
    lr: float | None = None


@dataclass(frozen=True)
class InstructionOptions:
    """The instruction data of the instruct arms.

    Attributes
    ----------
    sources : tuple of str
        ``'offline'`` (self-instruct + T0 under the training data folder, the stand-in for Dolly
        here), ``'dolly'`` (databricks-dolly-15k from the hub), or paths to Dolly-format files.
    max_pairs : int
        Keep a fixed random subset of at most this many pairs (0: all).
    min_response_chars : int
        Shorter responses are dropped as degenerate.
    weight : float
        The instruction source's size multiplier when a batch chooses its source.
    share : float or None
        Fixed share, in (0, 1), of hybrid+instruct's batches drawn from the instruction source (its
        own batches; the recipe option ``data[].share``); ``None``: by size and ``weight``. The
        other instruct arms train on the instruction pairs alone, where a share does not apply.
    drop_eval_overlap : bool
        Drop instruction pairs holding evaluation text (Dolly's Wikipedia contexts may) instead of
        refusing to train.
    e5_share : float
        Fixed share, in (0, 1), of hybrid+instruct-e5's batches drawn from the instruction source
        (that arm's second instruction mix).
    """

    sources: tuple[str, ...] = ('offline',)
    max_pairs: int = 0
    min_response_chars: int = 2
    weight: float = 1.0
    share: float | None = None
    drop_eval_overlap: bool = True
    e5_share: float = 0.1


@dataclass(frozen=True)
class EvalOptions:
    """How every arm is evaluated (exact full-pool scoring from the score matrix).

    Attributes
    ----------
    collections : tuple of str
        ``xquad-r`` (required) and ``mlqa-r`` (used when its files are present).
    data_dir : str or None
        Folder with ``{collection}/{lang}.json`` (default: ``$PYSERINI_HYBRID_DATA`` / the cache).
    verify : bool
        md5-check the files (turn off for hand-made test data only).
    batch_size : int
        Encoding batch size.
    threads : int or None
        Torch threads (default: torch's).
    precision : str
        Encoder precision of every arm's evaluation: ``'auto'`` (default: bf16 where native, int8
        on other CPUs; see :func:`pyserini_hybrid.encoders.resolve_precision`), ``'fp32'``,
        ``'bf16'`` (autocast; fast only on CPUs with AVX512-BF16/AMX or on GPUs) or ``'int8'`` (CPU
        only). A unit finished at another (resolved) precision is not reused (its folder must be
        deleted to redo it).
    bias_corrections : tuple of str
        Language-bias corrections every arm is evaluated under, from the same vectors (no training):
        ``none``, ``shift``, ``center``, ``lir[:R]``, ``lsar[:R]``
        (:mod:`pyserini_hybrid.encoders._bias`), statistics fitted from NTREX training-side text for
        each model before it is deleted. ``none`` must come first: it is the uncorrected model.
    """

    collections: tuple[str, ...] = ('xquad-r', 'mlqa-r')
    data_dir: str | None = None
    verify: bool = True
    batch_size: int = 64
    threads: int | None = None
    precision: str = 'auto'
    bias_corrections: tuple[str, ...] = ('none',)


@dataclass(frozen=True)
class ReportOptions:
    """Significance-test settings of the report.

    Attributes
    ----------
    n_resamples : int
        Randomization-test resamples.
    n_bootstrap : int
        Bootstrap resamples for the 95% intervals.
    alpha : float
        Significance level (after Holm correction).
    seed : int
        Seed of the tests' random generators.
    """

    n_resamples: int = 10_000
    n_bootstrap: int = 2_000
    alpha: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: arms x seeds, trained with one budget, evaluated and compared.

    Attributes
    ----------
    name : str
        Names the output folder and the trained models.
    recipe : str
        Training recipe (``encoders/*.yaml``) whose corpora, languages and hyper-parameters every
        trained arm shares; the arms change only the strategy and the data (see :data:`ARMS`).
        Relative paths are relative to the current directory.
    output : str or None
        Output folder of the units' results and the report (default ``reports/experiments/<name>``;
        the shipped experiments use ``experiments/results/<name>``, committed to git).
    models : str or None
        Folder of the trained models and their checkpoints (default ``models/experiments/<name>``,
        git-ignored): large, and re-made from each unit's ``recipe.yaml``.
    base : str or None
        Base encoder (default: the recipe's ``base``).
    seeds : tuple of int
        Training seeds; the base arm is evaluated once.
    arms : tuple of str
        Arms to run, from :data:`ARMS`.
    alpha : float
        P(mono batch) of the hybrid arms.
    two_stage_fraction : float
        Share of the steps given to instruction tuning in ``instruct-then-hybrid``.
    query_instructions : bool
        E5-instruct task instructions on queries ("Instruct: {task}\\nQuery: ") for every trained
        arm, one task per training source; at search time the LAReQA task.
    comparisons : tuple of (str, str)
        ``(a, b)`` pairs tested as ``b - a``.
    budget, instructions, evaluation, report
        See :class:`Budget`, :class:`InstructionOptions`, :class:`EvalOptions`, :class:`ReportOptions`.
    """

    name: str
    recipe: str
    output: str | None = None
    models: str | None = None
    base: str | None = None
    seeds: tuple[int, ...] = (13, 42, 87)
    arms: tuple[str, ...] = tuple(ARMS)[:6]
    alpha: float = 0.5
    two_stage_fraction: float = 0.5
    query_instructions: bool = False
    comparisons: tuple[tuple[str, str], ...] = DEFAULT_COMPARISONS
    budget: Budget = field(default_factory=Budget)
    instructions: InstructionOptions = field(default_factory=InstructionOptions)
    evaluation: EvalOptions = field(default_factory=EvalOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
    source: str = ''   # where the config came from (not a YAML key)

    @property
    def output_dir(self) -> Path:
        return Path(self.output or os.path.join('reports', 'experiments', self.name))

    @property
    def models_dir(self) -> Path:
        return Path(self.models or os.path.join('models', 'experiments', self.name))

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop('source')
        return _plain(out)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Read and check an experiment file.

    Raises
    ------
    ExperimentError
        Missing file, invalid YAML, unknown key, wrong type or invalid value (one line: file:line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        raise ExperimentError(f"experiment file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{path}: cannot read ({exc})") from None
    return parse_config(text, str(path))


def parse_config(text: str, where: str = '<experiment>') -> ExperimentConfig:
    """Parse experiment YAML text; ``where`` names it in messages."""
    data, lines = compose(text, where, ExperimentError, 'experiment file')
    values = build_fields(ExperimentConfig, data, '', where, lines, ExperimentError, exclude=frozenset({'source'}))
    if 'comparisons' not in values:  # the default pairs whose arms are both run
        arms = values.get('arms', ExperimentConfig.arms)
        values['comparisons'] = tuple(c for c in DEFAULT_COMPARISONS if c[0] in arms and c[1] in arms)
    config = ExperimentConfig(**values, source=where)
    _validate(config, where, lines)
    return config


def _validate(config: ExperimentConfig, where: str, lines: dict[str, int]) -> None:
    def fail(key: str, message: str) -> None:
        raise ExperimentError(f"{at(where, lines, key)}: {message}")

    if not config.name or any(c in config.name for c in '/\\') or config.name.startswith('.'):
        fail('name', f"'name' must be a plain folder name, got {config.name!r}")
    if not config.arms:
        fail('arms', "'arms' must name at least one arm")
    for i, arm in enumerate(config.arms):
        if arm not in ARMS:
            fail(f'arms[{i}]', f"unknown arm {arm!r} (choices: {', '.join(ARMS)})")
    if len(set(config.arms)) != len(config.arms):
        fail('arms', "'arms' lists an arm twice")
    if not config.seeds or len(set(config.seeds)) != len(config.seeds) or any(s < 0 for s in config.seeds):
        fail('seeds', f"'seeds' must be distinct non-negative integers, got {list(config.seeds)}")
    if not 0.0 <= config.alpha <= 1.0:
        fail('alpha', f"'alpha' must be in [0, 1], got {config.alpha}")
    if not 0.0 < config.two_stage_fraction < 1.0:
        fail('two_stage_fraction', f"'two_stage_fraction' must be in (0, 1), got {config.two_stage_fraction}")
    for i, (a, b) in enumerate(config.comparisons):
        for arm in (a, b):
            if arm not in config.arms:
                fail(f'comparisons[{i}]', f"comparison {a} vs {b}: arm {arm!r} is not in 'arms'")
        if a == b:
            fail(f'comparisons[{i}]', f"comparison of {a!r} with itself")
    b = config.budget
    if b.max_steps < 1:
        fail('budget.max_steps', f"'budget.max_steps' must be >= 1, got {b.max_steps}")
    if 'instruct-then-hybrid' in config.arms and b.max_steps < 2:
        fail('budget.max_steps', "'budget.max_steps' must be >= 2 for the two-stage arm")
    if b.batch_size < 2:
        fail('budget.batch_size', f"'budget.batch_size' must be >= 2 (in-batch negatives), got {b.batch_size}")
    if b.lr is not None and b.lr <= 0:
        fail('budget.lr', f"'budget.lr' must be > 0, got {b.lr}")
    ins = config.instructions
    if not ins.sources:
        fail('instructions.sources', "'instructions.sources' must name at least one source")
    if ins.max_pairs < 0 or ins.min_response_chars < 0:
        fail('instructions', "'instructions.max_pairs' and 'min_response_chars' must be >= 0")
    if ins.weight < 0:
        fail('instructions.weight', f"'instructions.weight' must be >= 0, got {ins.weight}")
    if ins.share is not None and not 0.0 < ins.share < 1.0:
        fail('instructions.share', f"'instructions.share' must be in (0, 1), got {ins.share}")
    if not 0.0 < ins.e5_share < 1.0:
        fail('instructions.e5_share', f"'instructions.e5_share' must be in (0, 1), got {ins.e5_share}")
    ev = config.evaluation
    from pyserini_hybrid.datasets import COLLECTIONS

    for i, collection in enumerate(ev.collections):
        if collection not in COLLECTIONS:
            fail(f'evaluation.collections[{i}]', f"unknown collection {collection!r} (choices: {', '.join(COLLECTIONS)})")
    if 'xquad-r' not in ev.collections:
        fail('evaluation.collections', "'evaluation.collections' must include xquad-r")
    if ev.batch_size < 1 or (ev.threads is not None and ev.threads < 1):
        fail('evaluation', "'evaluation.batch_size' and 'threads' must be >= 1")
    from pyserini_hybrid.encoders import PRECISIONS

    if ev.precision not in PRECISIONS:
        fail('evaluation.precision',
             f"'evaluation.precision' must be one of {', '.join(PRECISIONS)}, got {ev.precision!r}")
    from pyserini_hybrid.encoders import EncoderError, parse_bias_method

    labels = []
    for i, value in enumerate(ev.bias_corrections):
        try:
            parse_bias_method(value)
        except EncoderError as exc:
            fail(f'evaluation.bias_corrections[{i}]', str(exc))
        labels.append(value)
    if not labels or labels[0] != 'none' or len(set(labels)) != len(labels):
        fail('evaluation.bias_corrections', "'evaluation.bias_corrections' must start with none and list each "
                                            f"correction once, got {labels}")
    r = config.report
    if r.n_resamples < 1 or r.n_bootstrap < 1:
        fail('report', "'report.n_resamples' and 'n_bootstrap' must be >= 1")
    if not 0.0 < r.alpha < 1.0:
        fail('report.alpha', f"'report.alpha' must be in (0, 1), got {r.alpha}")
