"""A thin set-up of sentence-transformers' trainer for hybrid-batch training.

:func:`train` reads the corpora of a :class:`Recipe`, refuses evaluation text (zero-shot hygiene),
holds out training items for a validation loss, and runs ``SentenceTransformerTrainer`` with
``MultipleNegativesRankingLoss`` (cosine, ``scale`` = 1 / temperature; the cached variant for big
batches) and our batch samplers. Checkpoints go to ``<output>.checkpoints``; ``resume=True``
continues from the newest complete one and ends with the same weights as an uninterrupted run (same
seed, CPU). The finished model is written atomically to ``<output>``: a sentence-transformers
directory with our :class:`ModelSpec` (so ``--encoder <output>`` gets the right prefixes and
pooling), a model card (``README.md``) and ``training.json``.

Under ``torchrun`` (DDP, gloo on CPU) every rank draws the same seeded batch sequence and trains on
every ``world_size``-th batch of it, the loss gathers the in-batch negatives of all ranks, and rank
0 alone writes the checkpoint recipe and the model while the others wait at a barrier.

:func:`train` runs its steps in order: :func:`_check_outputs`, :func:`_read_data`,
:func:`_load_base`, :func:`_make_loss`, :func:`_training_arguments`, the trainer
(:func:`_trainer_class`), then :func:`_training_info` and :func:`_save_model`.
"""
from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from pyserini_hybrid._io import atomic_dir, atomic_write, check_output_path
from pyserini_hybrid.train._corpora import load_source
from pyserini_hybrid.train._data import PairTable, default_train_dir
from pyserini_hybrid.train._recipe import Recipe

__all__ = ['TrainResult', 'TrainError', 'train', 'load_tables', 'checkpoint_dir', 'last_checkpoint',
           'code_version', 'BatchRecorder', 'rank_path']

logger = logging.getLogger(__name__)

RECIPE_FILE = 'recipe.json'
LOG_FILE = 'training.json'


class TrainError(RuntimeError):
    """A training run that cannot start or continue (existing output, mismatched checkpoints...)."""


@dataclass
class TrainResult:
    """What a :func:`train` call did.

    Attributes
    ----------
    output : Path
        The model directory (complete only when ``completed``).
    completed : bool
        False when training stopped before ``max_steps`` without early stopping (interrupted);
        the checkpoints stay for ``resume``.
    global_step : int
    log : list of dict
        The trainer's log history (training loss every ``logging_steps``, validation losses).
    pairs_per_second : float
        Training pairs per second of step time (validation excluded).
    sources : dict
        Per source: items trained on / held out, languages.
    """

    output: Path
    completed: bool
    global_step: int
    log: list[dict] = field(default_factory=list)
    pairs_per_second: float = 0.0
    sources: dict[str, dict] = field(default_factory=dict)
    early_stopped: bool = False


def checkpoint_dir(output: str | os.PathLike) -> Path:
    """Where the checkpoints of a run writing ``output`` live: ``<output>.checkpoints``."""
    output = Path(output)
    return output.with_name(output.name + '.checkpoints')


def last_checkpoint(ckpt_dir: str | os.PathLike) -> Path | None:
    """The newest *complete* ``checkpoint-N`` (its ``trainer_state.json`` parses; it is written last)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return None
    found = []
    for path in ckpt_dir.glob('checkpoint-*'):
        try:
            step = int(path.name.split('-', 1)[1])
            json.loads((path / 'trainer_state.json').read_text(encoding='utf-8'))
        except (ValueError, OSError):
            continue
        found.append((step, path))
    return max(found)[1] if found else None


def code_version() -> str:
    """Package version, plus the git commit (``+dirty`` with local changes) when run from a checkout."""
    import pyserini_hybrid

    version = pyserini_hybrid.__version__
    repo = Path(pyserini_hybrid.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(['git', '-C', str(repo), 'rev-parse', '--short', 'HEAD'], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(['git', '-C', str(repo), 'status', '--porcelain', '--untracked-files=no'],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version} (git {commit}{'+dirty' if dirty else ''})" if commit else version


def load_tables(recipe: Recipe, train_dir: str | os.PathLike | None = None,
                index: dict[str, str] | None = None) -> tuple[list[PairTable], dict[str, int]]:
    """Read the recipe's corpora; drop evaluation-overlapping items where an entry asks for it.

    Returns the tables and, per source, how many items were dropped for overlap.
    """
    from pyserini_hybrid.train._hygiene import drop_overlapping, eval_index

    train_dir = Path(train_dir) if train_dir is not None else default_train_dir()
    tables, dropped = [], {}
    for entry in recipe.data:
        table = load_source(entry.corpus, train_dir, recipe.languages, task=entry.task, **entry.options)
        table.name = entry.source_name
        if entry.drop_eval_overlap:
            index = eval_index() if index is None else index
            table, dropped[table.name] = drop_overlapping(table, index)
        if len(table) == 0:
            raise TrainError(f"corpus {entry.corpus!r} gives no items in languages {', '.join(recipe.languages)}")
        tables.append(table)
    return tables, dropped


# ------------------------------------------------------------------------------------------------


def _shares(recipe: Recipe, names: set[str] | None = None) -> dict[str, float]:
    """The fixed batch shares of the recipe's sources (those in ``names``, when given)."""
    return {e.source_name: e.share for e in recipe.data
            if e.share is not None and (names is None or e.source_name in names)}


def _validation_dataset(held: list[PairTable], recipe: Recipe, prefixes: tuple[str, str, str | None]):
    """Fixed validation batches (built once with the training strategy) as a flat dataset."""
    from datasets import Dataset
    from torch.utils.data import ConcatDataset

    from pyserini_hybrid.train._recipe import strategy_alpha
    from pyserini_hybrid.train._samplers import HybridBatchSampler, PairBatchSampler

    held = [t for t in held if len(t) >= 2]
    if not held:
        return None
    alpha = strategy_alpha(recipe.strategy, recipe.alpha)
    datasets = [t.to_dataset(*prefixes, with_negatives=False) for t in held]
    seed = recipe.seed + 1
    subs = [PairBatchSampler(ds, recipe.batch_size, True, seed=seed, alpha=alpha, languages=recipe.languages)
            for ds in datasets]
    names = {t.name for t in held}
    try:
        sampler = HybridBatchSampler(ConcatDataset(datasets), subs, seed=seed, alpha=alpha,
                                     weights={e.source_name: e.weight for e in recipe.data if e.source_name in names},
                                     shares=_shares(recipe, names))
    except ValueError as exc:
        logger.warning("no validation loss: the held-out items cannot fill a batch (%s)", exc)
        return None
    import numpy as np

    rng = np.random.default_rng([seed, 0])
    anchors, positives = [], []
    for _ in range(recipe.validation.batches * 4):
        _, source, rows = sampler.next_batch(rng)
        if len(rows) == recipe.batch_size:   # sequential batching below needs full batches
            texts = datasets[source][rows]
            anchors += texts['anchor']
            positives += texts['positive']
        if len(anchors) >= recipe.validation.batches * recipe.batch_size:
            break
    if not anchors:
        return None
    return Dataset.from_dict({'anchor': anchors, 'positive': positives})


def _throughput_callback():
    """A trainer callback timing the training steps (validation and saving excluded)."""
    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        # process CPU time too: on a shared machine it measures the work, wall time the wait as well
        def __init__(self) -> None:
            self.seconds = self.cpu_seconds = 0.0
            self.steps = 0
            self._t0: tuple[float, float] | None = None

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kwargs):
            if self._t0 is not None:
                self.seconds += time.perf_counter() - self._t0[0]
                self.cpu_seconds += time.process_time() - self._t0[1]
                self.steps += 1
                self._t0 = None

    return Throughput()


class BatchRecorder:
    """Wraps the trainer's training batch sampler and says which rows each trained step used.

    Whatever sampler the trainer built (ours, or sentence-transformers' defaults), every batch it
    yields is decoded into its source names and the (query, positive) language of each row, and
    queued; :meth:`trained` takes the entry of the batch a training step is about to use. The
    queue absorbs the data loader's prefetch (the batch after the last step is never trained on)
    and, on ``--resume``, the batches the trainer skips to reach the checkpoint's position.

    Under DDP the wrapped sampler yields every process's batches and accelerate hands process
    ``r`` of ``n`` those at positions ``r, r + n, ...`` (a group of ``n`` whose last batch is short
    is given to no one); the recorder queues only the batches this process trains on.

    Parameters
    ----------
    sampler : torch.utils.data.BatchSampler
        The multi-dataset batch sampler the trainer built.
    dataset : torch.utils.data.ConcatDataset
        The sources it indexes (datasets made by ``PairTable.to_dataset``).
    num_processes, process_index : int
        The DDP world size and this process's rank (1 and 0 without DDP).
    """

    def __init__(self, sampler: Any, dataset: Any, num_processes: int = 1, process_index: int = 0) -> None:
        from pyserini_hybrid.train._data import pair_table

        self.sampler = sampler
        self.num_processes, self.process_index = num_processes, process_index
        self.tables = [pair_table(d) for d in dataset.datasets]
        self.ends = list(dataset.cumulative_sizes)
        self.sampler_name = f'{type(sampler).__module__}.{type(sampler).__qualname__}'
        self.pending: deque[tuple[int, dict]] = deque()

    def __len__(self) -> int:
        return len(self.sampler)

    def __getattr__(self, name: str) -> Any:   # set_epoch, batch_size, ... of the wrapped sampler
        if 'sampler' not in self.__dict__:      # while unpickling or copying: no wrapped sampler yet
            raise AttributeError(name)
        return getattr(self.__dict__['sampler'], name)

    def __iter__(self) -> Iterator[list[int]]:
        n, mine, delivered = self.num_processes, None, 0
        epoch = int(getattr(self.sampler, 'epoch', 0))   # set by the trainer before each pass
        for position, batch in enumerate(self.sampler):
            if n == 1:
                self.pending.append((position, {'epoch': epoch, **self.describe(batch)}))
            else:   # accelerate's BatchSamplerShard (drop_last): a group goes out when its last batch is full
                if position % n == self.process_index:
                    mine = {'epoch': epoch, **self.describe(batch)}
                if position % n == n - 1:
                    if len(batch) == self.sampler.batch_size and mine is not None:
                        self.pending.append((delivered, mine))
                        delivered += 1
                    mine = None
            yield batch

    def describe(self, batch: Sequence[int]) -> dict:
        """``{'sources': [...], 'rows': [[query lang, positive lang], ...], 'indices': [...]}`` of one batch
        (``indices``: the rows' indices in the concatenated training dataset)."""
        sources, rows = [], []
        for index in batch:
            source = bisect.bisect_right(self.ends, int(index))
            local = int(index) - (self.ends[source - 1] if source else 0)
            table = self.tables[source]
            sources.append(table.name)
            rows.append(list(table.row_langs(local)))
        return {'sources': sorted(set(sources)), 'rows': rows, 'indices': [int(i) for i in batch]}

    def trained(self, global_step: int) -> dict:
        """The entry of the batch that step ``global_step + 1`` trains on (one batch per step)."""
        position = global_step % max(1, len(self) // self.num_processes)
        while self.pending and self.pending[0][0] != position:   # skipped on resume
            self.pending.popleft()
        if not self.pending:
            raise TrainError(f"batch log: no recorded batch for step {global_step + 1}")
        entry = {'step': global_step + 1, 'sampler': self.sampler_name, **self.pending.popleft()[1]}
        if self.num_processes > 1:
            entry['rank'] = self.process_index
        return entry


def rank_path(path: str | os.PathLike, rank: int, world_size: int) -> Path:
    """``path`` for a single process; ``<stem>.rank<R><suffix>`` for process ``rank`` under DDP."""
    path = Path(path)
    return path if world_size <= 1 else path.with_name(f'{path.stem}.rank{rank}{path.suffix}')


def _freeze_word_embeddings(model: Any) -> int:
    """Stop gradients to the input word embeddings (96M of me5-small's 118M parameters)."""
    frozen = 0
    for module in model:
        auto = getattr(module, 'auto_model', None)
        if auto is not None and hasattr(auto, 'get_input_embeddings'):
            weight = auto.get_input_embeddings().weight
            weight.requires_grad_(False)
            frozen += weight.numel()
    return frozen


@dataclass
class _Run:
    """Where a run writes, what it resumes from, and its place among the DDP processes."""

    output: Path
    ckpt_dir: Path
    snapshot: dict
    resume_from: Path | None
    batch_log: Path | None
    world_size: int
    rank: int


@dataclass
class _Data:
    """The training and held-out tables of a run, with what the model card says about them."""

    train_tables: list[PairTable]
    held_tables: list[PairTable]
    sources: dict[str, dict]
    texts_checked: int
    index_size: int


@dataclass
class _Base:
    """The base encoder set up for training."""

    encoder: Any
    spec: Any
    search_max_length: int
    frozen: int
    precision: str

    @property
    def model(self) -> Any:
        return self.encoder.model


def _check_outputs(recipe: Recipe, resume: bool, batch_log: str | os.PathLike | None) -> _Run:
    """Refuse an existing model, a batch log that cannot be written, or checkpoints of another recipe."""
    output = recipe.output_dir
    if recipe.output is None:   # the default models/<name>: a fresh clone has no models/ yet
        output.parent.mkdir(parents=True, exist_ok=True)
    check_output_path(output)
    # set by torchrun / accelerate launch: one process per rank, each drawing every world_size-th batch
    world_size, rank = int(os.environ.get('WORLD_SIZE', '1')), int(os.environ.get('RANK', '0'))
    if batch_log is not None:
        batch_log = rank_path(batch_log, rank, world_size)
        check_output_path(batch_log)
    ckpt_dir = checkpoint_dir(output)
    if output.exists():
        raise TrainError(f"output {output} already exists: choose another --output or remove it")
    snapshot = {k: v for k, v in recipe.to_dict().items() if k != 'output'}
    if ckpt_dir.exists():
        if not resume:
            raise TrainError(f"{ckpt_dir} holds checkpoints of an earlier run: pass --resume to continue it, "
                             "or remove it")
        saved = ckpt_dir / RECIPE_FILE
        if saved.is_file():
            before = json.loads(saved.read_text(encoding='utf-8'))
            diff = sorted(k for k in set(before) | set(snapshot) if before.get(k) != snapshot.get(k))
            if diff:
                raise TrainError(f"{ckpt_dir} was made with a different recipe (differs in: {', '.join(diff)}); "
                                 "resume with the same settings or remove it")
    resume_from = last_checkpoint(ckpt_dir) if resume else None
    if resume and resume_from is None:
        logger.warning("nothing to resume in %s: starting from step 0", ckpt_dir)
    return _Run(output=output, ckpt_dir=ckpt_dir, snapshot=snapshot, resume_from=resume_from,
                batch_log=None if batch_log is None else Path(batch_log), world_size=world_size, rank=rank)


def _read_data(recipe: Recipe, train_dir: str | os.PathLike | None, eval_index: dict[str, str] | None) -> _Data:
    """The recipe's corpora, checked for evaluation text (zero-shot hygiene), less the held-out items."""
    from pyserini_hybrid.train._hygiene import check_zero_shot
    from pyserini_hybrid.train._hygiene import eval_index as build_index

    index = build_index() if eval_index is None else eval_index
    tables, dropped = load_tables(recipe, train_dir, index)
    n_texts = check_zero_shot(tables, index)
    v = recipe.validation
    train_tables, held_tables = [], []
    for table in tables:
        if v.fraction > 0:
            kept, held = table.split(v.fraction, v.max_items, recipe.seed)
        else:
            kept, held = table, table.subset([])
        train_tables.append(kept)
        held_tables.append(held)
    sources = {t.name: {'corpus': e.corpus, 'options': e.options, 'languages': list(t.langs), 'items': len(t),
                        'held_out': len(h), 'dropped_eval_overlap': dropped.get(t.name, 0), 'weight': e.weight,
                        'share': e.share, 'task': e.task, 'same_text': t.same_text, 'objective': e.objective,
                        'negatives': t.negatives is not None}
               for t, h, e in zip(train_tables, held_tables, recipe.data)}
    return _Data(train_tables=train_tables, held_tables=held_tables, sources=sources, texts_checked=n_texts,
                 index_size=len(index))


def _load_base(recipe: Recipe, device: str | None) -> _Base:
    """The base encoder in fp32 (autocast sets the compute precision), at the training max length."""
    from transformers import set_seed

    from pyserini_hybrid.encoders import Encoder, get_spec
    from pyserini_hybrid.encoders._model import native_bf16, resolve_precision

    set_seed(recipe.seed)   # before the model is built: a freshly initialised head depends on it
    template = get_spec(recipe.base).query_instruction or ''
    # a base trained with task instructions (two-stage training) wants a task; training sets its own per source
    # fp32 weights to train (never int8); autocast below sets the compute precision
    encoder = Encoder(recipe.base, precision='fp32', device=device, task='-' if '{task}' in template else None)
    spec = encoder.spec
    if recipe.query_instruction is not None:
        spec = dataclasses.replace(spec, query_instruction=recipe.query_instruction)
    model = encoder.model
    search_max_length = model.max_seq_length
    model.max_seq_length = recipe.max_length
    frozen = _freeze_word_embeddings(model) if recipe.freeze_embeddings else 0
    precision = resolve_precision(recipe.precision, model.device, for_training=True)
    logger.info("training precision: %s (recipe: %s, device %s)", precision, recipe.precision, model.device)
    if precision == 'bf16' and model.device.type == 'cpu' and not native_bf16():
        logger.warning("this CPU has no native bfloat16 (AMX/AVX512-BF16): 'precision: bf16' will be slow; "
                       "use --precision auto or fp32")
    return _Base(encoder=encoder, spec=spec, search_max_length=search_max_length, frozen=frozen,
                 precision=precision)


def _make_loss(recipe: Recipe, model: Any, world_size: int, distill: bool = False) -> Any:
    """In-batch negatives InfoNCE; under DDP each rank scores its queries against every rank's passages.

    With ``distill``, batches of distillation sources go to :class:`TranslationDistillLoss` instead.
    """
    from sentence_transformers.sentence_transformer.losses import (CachedMultipleNegativesRankingLoss,
                                                                   MultipleNegativesRankingLoss)

    if recipe.loss == 'cached-mnrl':
        pairs = CachedMultipleNegativesRankingLoss(model, scale=recipe.scale, mini_batch_size=recipe.mini_batch_size,
                                                   gather_across_devices=world_size > 1)
    else:
        pairs = MultipleNegativesRankingLoss(model, scale=recipe.scale, gather_across_devices=world_size > 1)
    if not distill:
        return pairs
    from pyserini_hybrid.train._losses import PairsOrDistillLoss, TranslationDistillLoss

    return PairsOrDistillLoss(pairs, TranslationDistillLoss(model))


def _distill_sources(recipe: Recipe, run: _Run) -> set[str]:
    """Names of the recipe's ``objective: distill`` sources (refused under DDP)."""
    names = {e.source_name for e in recipe.data if e.objective == 'distill'}
    # ranks train different batches of one sequence: a distillation batch on one rank while another
    # gathers in-batch negatives would leave the gather waiting
    if names and run.world_size > 1:
        raise TrainError(f"objective 'distill' ({', '.join(sorted(names))}) trains in one process only: "
                         "run without torchrun")
    return names


def _teacher_vectors(table: PairTable, base: _Base) -> Any:
    """The frozen base model's passage embedding of each item's English text (before any step)."""
    if 'en' not in table.langs:
        raise TrainError(f"source {table.name!r} (objective 'distill') has no English text to distil from")
    en = table.positives[:, table.langs.index('en')]
    missing = sum(1 for text in en if not text)
    if missing:
        raise TrainError(f"source {table.name!r} (objective 'distill'): {missing} of {len(en)} items have no "
                         "English text; use a corpus whose items all have English (e.g. ntrex, tico)")
    return base.encoder.encode_passages(list(en))


def _training_arguments(recipe: Recipe, run: _Run, base: _Base, eval_dataset: Any, progress: bool) -> Any:
    """``SentenceTransformerTrainingArguments`` with our samplers, checkpoints, validation and precision."""
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    from pyserini_hybrid.train._samplers import make_samplers

    v = recipe.validation
    batch_sampler, multi_sampler = make_samplers(recipe.strategy, recipe.alpha, recipe.languages,
                                                 {e.source_name: e.weight for e in recipe.data}, _shares(recipe),
                                                 world_size=run.world_size)
    early = _early_stopping(recipe, eval_dataset)
    on_cpu = base.model.device.type == 'cpu'
    return SentenceTransformerTrainingArguments(
        output_dir=str(run.ckpt_dir), max_steps=recipe.max_steps, per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size, learning_rate=recipe.lr, weight_decay=recipe.weight_decay,
        warmup_steps=recipe.warmup, lr_scheduler_type='linear', seed=recipe.seed, data_seed=recipe.seed,
        batch_sampler=batch_sampler, multi_dataset_batch_sampler=multi_sampler, dataloader_drop_last=True,
        eval_strategy='steps' if eval_dataset is not None else 'no', eval_steps=v.eval_steps,
        save_strategy='steps', save_steps=v.eval_steps if early else recipe.save_steps, save_total_limit=2,
        load_best_model_at_end=early, metric_for_best_model='eval_loss' if early else None,
        greater_is_better=False if early else None,
        eval_on_start=eval_dataset is not None and run.resume_from is None,   # the base model's validation loss
        logging_steps=recipe.logging_steps, report_to='none', disable_tqdm=not progress,
        bf16=base.precision == 'bf16', use_cpu=on_cpu, dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # DDP on CPU: gloo (NCCL is GPU-only); a base's unused pooler gets no gradient, which DDP must know
        ddp_backend='gloo' if run.world_size > 1 and on_cpu else None,
        ddp_find_unused_parameters=True if run.world_size > 1 else None)


def _early_stopping(recipe: Recipe, eval_dataset: Any) -> bool:
    return eval_dataset is not None and recipe.validation.patience > 0


def _trainer_class() -> type:
    """``SentenceTransformerTrainer`` loading checkpoints through our loader, recording batches on request.

    Built on first use: importing this module does not import sentence-transformers.
    """
    from sentence_transformers import SentenceTransformerTrainer

    from pyserini_hybrid.encoders._model import load_sentence_transformer

    class HybridTrainer(SentenceTransformerTrainer):
        def __init__(self, *args: Any, model_spec: Any, record_batches: bool = False, **kwargs: Any) -> None:
            self.model_spec = model_spec
            self.record_batches = record_batches
            self.recorders: list[BatchRecorder] = []
            self.logged_batches: list[dict] = []
            super().__init__(*args, **kwargs)

        # sentence-transformers rebuilds a checkpoint with transformers' defaults, which re-adds the
        # untrained BERT pooler our loader drops; reload (--resume, best model) through our loader.
        def _load_from_checkpoint(self, checkpoint_path: str, model: Any = None) -> None:
            loaded = load_sentence_transformer(Path(checkpoint_path), self.model_spec, device='cpu')
            self.model.load_state_dict(loaded.state_dict())

        # --batch-log: wrap whatever training sampler is built; each step logs the batch it gets
        def get_multi_dataset_batch_sampler(self, *args: Any, **kwargs: Any) -> Any:
            sampler = super().get_multi_dataset_batch_sampler(*args, **kwargs)
            if not self.record_batches:
                return sampler
            dataset = kwargs['dataset'] if 'dataset' in kwargs else args[0]
            self.recorders.append(BatchRecorder(sampler, dataset, self.args.world_size, self.args.process_index))
            return self.recorders[-1]

        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            if self.recorders:
                self.logged_batches.append(self.recorders[-1].trained(self.state.global_step))
            return super().training_step(*args, **kwargs)

    return HybridTrainer


def _training_info(recipe: Recipe, run: _Run, data: _Data, base: _Base, state: Any, throughput: Any,
                   eval_dataset: Any, *, early_stopped: bool, pairs_per_second: float, seconds: float) -> dict:
    """``training.json``: the recipe, the data and hygiene, the run's steps, speed, device and losses."""
    import torch

    return {
        'recipe': recipe.to_dict(), 'base': recipe.base, 'base_fingerprint': base.encoder.fingerprint,
        'strategy': recipe.strategy, 'alpha': recipe.alpha if recipe.strategy == 'hybrid' else None,
        'steps': state.global_step, 'max_steps': recipe.max_steps, 'early_stopped': early_stopped,
        'best_checkpoint_step': state.best_global_step, 'seed': recipe.seed, 'code_version': code_version(),
        'sources': data.sources, 'hygiene': {'texts_checked': data.texts_checked,
                                             'eval_index_size': data.index_size},
        'frozen_parameters': base.frozen, 'pairs_per_second': round(pairs_per_second, 3),
        'pairs_per_cpu_second': round(throughput.steps * recipe.batch_size / throughput.cpu_seconds, 3)
        if throughput.cpu_seconds else None,
        'train_seconds': round(seconds, 1), 'device': str(base.model.device),
        'precision': base.precision, 'world_size': run.world_size, 'torch': torch.__version__,
        'log_history': state.log_history,
        'validation_batches': 0 if eval_dataset is None else len(eval_dataset) // recipe.batch_size,
    }


def _save_model(output: Path, base: _Base, info: dict) -> None:
    """The model directory, written atomically: weights at the search max length, spec, log, card."""
    from pyserini_hybrid.encoders import save_spec

    model = base.model
    model.max_seq_length = base.search_max_length
    with atomic_dir(output) as tmp:
        model.save(str(tmp), create_model_card=False)
        save_spec(tmp, base.spec)
        with atomic_write(tmp / LOG_FILE) as out:
            json.dump(info, out, indent=2, default=str)
            out.write('\n')
        with atomic_write(tmp / 'README.md') as out:
            out.write(model_card(info, base.spec))


def train(recipe: Recipe, *, train_dir: str | os.PathLike | None = None, resume: bool = False,
          device: str | None = None, callbacks: Sequence[Any] = (), progress: bool = True,
          keep_checkpoints: bool = False, eval_index: dict[str, str] | None = None,
          batch_log: str | os.PathLike | None = None) -> TrainResult:
    """Train an encoder as ``recipe`` says and write it to ``recipe.output_dir``.

    Parameters
    ----------
    recipe : Recipe
    train_dir : path, optional
        Folder of the training corpora (default ``$PYSERINI_HYBRID_TRAIN_DATA`` or ../shared/data/train).
    resume : bool
        Continue from the newest complete checkpoint in ``<output>.checkpoints`` (start fresh when
        there is none).
    device : str, optional
        ``'cpu'`` forces the CPU; default: a GPU when present (several through accelerate/torchrun).
    callbacks : sequence of transformers.TrainerCallback
        Extra trainer callbacks.
    progress : bool
        Show the trainer's progress bar.
    keep_checkpoints : bool
        Keep ``<output>.checkpoints`` after a completed run.
    eval_index : dict, optional
        Pre-built zero-shot hygiene index (:func:`pyserini_hybrid.train.eval_index`); built from
        XQuAD-R (and MLQA-R when present) by default.
    batch_log : path, optional
        Write, as JSON lines, one line per training step of this call: the step, the batch
        sampler's class, the batch's source names and each row's ``[query language, positive
        language]`` (see :class:`BatchRecorder`). Written when training returns (completed or
        stopped); a resumed run logs the steps it trains itself. Under DDP every process writes
        its own, ``<stem>.rank<R><suffix>`` (:func:`rank_path`), with ``rank`` in each line.

    Raises
    ------
    TrainError, RecipeError, TrainDataError, ZeroShotLeakError
        With one line saying what is wrong.
    """
    from datasets import DatasetDict
    from transformers import EarlyStoppingCallback

    run = _check_outputs(recipe, resume, batch_log)
    data = _read_data(recipe, train_dir, eval_index)
    base = _load_base(recipe, device)
    prefixes = (base.spec.query_prefix, base.spec.passage_prefix, base.spec.query_instruction)
    distill = _distill_sources(recipe, run)
    train_dataset = DatasetDict({
        t.name: (t.to_distill_dataset(_teacher_vectors(t, base), base.spec.passage_prefix) if t.name in distill
                 else t.to_dataset(*prefixes, with_negatives=recipe.hard_negatives))
        for t in data.train_tables})
    # the validation loss stays the pair loss on pair sources: comparable with runs without distillation
    eval_dataset = (_validation_dataset([t for t in data.held_tables if t.name not in distill], recipe, prefixes)
                    if recipe.validation.fraction > 0 else None)
    loss = _make_loss(recipe, base.model, run.world_size, distill=bool(distill))
    args = _training_arguments(recipe, run, base, eval_dataset, progress)
    early = _early_stopping(recipe, eval_dataset)
    throughput = _throughput_callback()
    trainer_callbacks = [throughput, *callbacks]
    if early:
        trainer_callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe.validation.patience))
    trainer = _trainer_class()(model=base.model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                               loss=loss, callbacks=trainer_callbacks, model_spec=base.spec,
                               record_batches=run.batch_log is not None)

    # every process has checked that no output or foreign checkpoints exist before rank 0 makes them
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        run.ckpt_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run.ckpt_dir / RECIPE_FILE) as out:
            json.dump(run.snapshot, out, indent=2, sort_keys=True)
    started = time.time()
    trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)
    state = trainer.state
    if run.batch_log is not None:
        with atomic_write(run.batch_log) as out:
            out.writelines(json.dumps(entry, separators=(',', ':')) + '\n' for entry in trainer.logged_batches)
    early_stopped = early and any(isinstance(cb, EarlyStoppingCallback) and
                                  cb.early_stopping_patience_counter >= recipe.validation.patience
                                  for cb in trainer.callback_handler.callbacks)
    pairs_per_second = (throughput.steps * recipe.batch_size * run.world_size / throughput.seconds
                        if throughput.seconds else 0.0)
    result = TrainResult(output=run.output, completed=state.global_step >= recipe.max_steps or early_stopped,
                         global_step=state.global_step, log=list(state.log_history),
                         pairs_per_second=pairs_per_second, sources=data.sources, early_stopped=early_stopped)
    if not result.completed:
        logger.warning("training stopped at step %d of %d: resume with --resume", state.global_step,
                       recipe.max_steps)
        return result
    if trainer.is_world_process_zero():
        info = _training_info(recipe, run, data, base, state, throughput, eval_dataset,
                              early_stopped=early_stopped, pairs_per_second=pairs_per_second,
                              seconds=time.time() - started)
        _save_model(run.output, base, info)
        if not keep_checkpoints:
            shutil.rmtree(run.ckpt_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()   # the other ranks return once rank 0 has written the model
    return result


def model_card(info: dict, spec: Any) -> str:
    """Markdown model card: base, strategy, alpha, data, steps, seed, code version, losses."""
    recipe = info['recipe']
    losses = [(e['step'], e['loss']) for e in info['log_history'] if 'loss' in e]
    evals = [(e['step'], e['eval_loss']) for e in info['log_history'] if 'eval_loss' in e]
    lines = [
        f"# {recipe['name']}",
        '',
        f"Trained with pyserini-hybrid `{info['code_version']}`: `python -m pyserini_hybrid.train --recipe ...`",
        '(recipe below). Load it with `--encoder <this directory>` or '
        '`pyserini_hybrid.encoders.Encoder(<this directory>)`:',
        f"queries get `{spec.query_prefix!r}`, passages `{spec.passage_prefix!r}`, {spec.pooling} pooling, "
        f"{'normalised, ' if spec.normalize else ''}{spec.similarity} similarity.",
        '',
        '| | |', '|---|---|',
        f"| base | `{info['base']}` |",
        f"| strategy | {info['strategy']} |",
        f"| alpha (P(mono batch)) | {info['alpha'] if info['alpha'] is not None else '-'} |",
        f"| languages | {', '.join(recipe['languages'])} |",
        f"| steps | {info['steps']} of {info['max_steps']}{' (early stopped)' if info['early_stopped'] else ''} |",
        f"| batch size | {recipe['batch_size']} |",
        f"| learning rate | {recipe['lr']} (AdamW, weight decay {recipe['weight_decay']}, warm-up {recipe['warmup']}) |",
        f"| loss | {recipe['loss']}, scale {recipe['scale']} (temperature {1 / recipe['scale']:.3g}), "
        f"hard negatives {'on' if recipe['hard_negatives'] else 'off'} |",
        f"| max length (training) | {recipe['max_length']} tokens |",
        f"| frozen word embeddings | {info['frozen_parameters']:,} parameters |",
        f"| seed | {info['seed']} |",
        f"| code version | {info['code_version']} |",
        f"| device | {info['device']} x {info['world_size']}, {info['pairs_per_second']} pairs/s, "
        f"{info['train_seconds']} s |",
        f"| precision | {info.get('precision', recipe['precision'])} (recipe: {recipe['precision']}) |",
        '',
        '## Data',
        '',
        '| source | corpus | languages | items | held out | dropped (eval overlap) | weight / share |',
        '|---|---|---|---|---|---|---|',
    ]
    for name, s in info['sources'].items():
        mixing = s['weight'] if s.get('share') is None else f"share {s['share']}"
        lines.append(f"| {name} | {s['corpus']} {s['options'] or ''} | {', '.join(s['languages'])} | {s['items']} | "
                     f"{s['held_out']} | {s['dropped_eval_overlap']} | {mixing} |")
    lines += ['', f"Zero-shot hygiene: {info['hygiene']['texts_checked']:,} training texts checked against "
              f"{info['hygiene']['eval_index_size']:,} evaluation texts (XQuAD-R questions, sentences and "
              "contexts; MLQA-R when present): no overlap.", '', '## Losses', '']
    if losses:
        lines.append('training loss (step: loss): ' + ', '.join(f'{s}: {l:.3f}' for s, l in losses[:: max(1, len(losses) // 12)]))
    if evals:
        lines.append('')
        lines.append('validation loss on held-out training items: ' + ', '.join(f'{s}: {l:.3f}' for s, l in evals))
    lines += ['', '## Recipe', '', '```json', json.dumps(recipe, indent=2), '```', '']
    return '\n'.join(lines)
