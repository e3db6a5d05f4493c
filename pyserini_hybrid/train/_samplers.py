"""Mono, cross and hybrid batch samplers on sentence-transformers' sampler API.

The trainer gets a ``DatasetDict`` of lazy pair datasets (one per source corpus, see
:meth:`PairTable.to_dataset <pyserini_hybrid.train._data.PairTable.to_dataset>`); each row index
encodes ``(item, query language, positive language)``. Two sampler levels, as sentence-transformers
builds them:

- :class:`PairBatchSampler` (a ``DefaultBatchSampler``), one per source: draws items without
  replacement (a fresh seeded permutation per pass) and turns them into rows of a *mono* batch
  (one language for query and positive) or a *cross* batch (each row its own query language and a
  different positive language). Items whose texts would repeat a text already in the batch (compared
  case- and space-insensitively) are deferred to a later batch: a repeated text would be a false
  in-batch negative.
- :class:`HybridBatchSampler` (a ``MultiDatasetDefaultBatchSampler``) decides each batch: mono with
  probability ``alpha`` (one language drawn uniformly over the training languages, then a source
  that has that language, in proportion to its size), else cross (a source in proportion to its
  cross-capable size), and asks that source's sampler for the rows. A source given a ``share``
  instead gets that fixed probability of each batch, whatever its size (its own batches, mono or
  cross as above); the sources without a share split the rest as described.
  :class:`MonoBatchSampler` (``alpha=1``) and :class:`CrossBatchSampler` (``alpha=0``) are the two
  pure strategies.

Everything is seeded from ``(seed, epoch)``: the same seed gives the same batches, and a resumed
run replays its epoch exactly (the trainer skips the batches it already trained on).
"""
from __future__ import annotations

import zlib
from collections import deque
from functools import partial
from itertools import accumulate
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler, MultiDatasetDefaultBatchSampler
from torch.utils.data import SequentialSampler

from pyserini_hybrid.train._data import PairTable, normalize_text, pair_table
from pyserini_hybrid.train._recipe import STRATEGIES, strategy_alpha

__all__ = ['STRATEGIES', 'PairBatchSampler', 'HybridBatchSampler', 'MonoBatchSampler', 'CrossBatchSampler',
           'make_samplers', 'pair_or_sequential_sampler', 'strategy_alpha']

class PairBatchSampler(DefaultBatchSampler):
    """Mono / cross batches from one source dataset (a dataset made by ``PairTable.to_dataset``).

    Parameters
    ----------
    dataset : datasets.Dataset
        A lazy pair dataset; its :class:`PairTable` gives the items and languages.
    batch_size, drop_last, valid_label_columns, generator, seed
        As for sentence-transformers' ``DefaultBatchSampler``; ``generator`` is not used (batches
        depend on ``seed`` and the epoch only).
    alpha : float
        Probability of a mono batch when this sampler is iterated on its own.
    languages : sequence of str, optional
        Restrict rows to these languages (default: all of the table's languages).
    """

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool = True,
                 valid_label_columns: list[str] | None = None, generator: Any = None, seed: int = 0, *,
                 alpha: float = 0.5, languages: Sequence[str] | None = None) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        table = pair_table(dataset)
        if table is None:
            raise TypeError("PairBatchSampler needs a dataset made by PairTable.to_dataset()")
        self.table: PairTable = table
        self.alpha = float(alpha)
        self.cols = np.array([j for j, l in enumerate(table.langs) if languages is None or l in languages],
                             dtype=np.int64)
        self.languages = tuple(table.langs[j] for j in self.cols)
        q, p = table.query_mask(), table.positive_mask()
        self._q = np.zeros_like(q)
        self._p = np.zeros_like(p)
        self._q[:, self.cols] = q[:, self.cols]
        self._p[:, self.cols] = p[:, self.cols]
        self._mono = {} if table.same_text else {
            table.langs[j]: np.flatnonzero(self._q[:, j] & self._p[:, j]) for j in self.cols}
        nq, npos, both = self._q.sum(1), self._p.sum(1), (self._q & self._p).sum(1)
        self._cross = np.flatnonzero((nq >= 1) & (npos >= 1) & ~((nq == 1) & (npos == 1) & (both == 1)))
        self._queues: dict[Any, deque] = {}
        self._rng = np.random.default_rng()
        self.start_epoch(0)

    # --- capacities (how many items each batch kind can draw from) -----------------------------
    def mono_capacity(self, lang: str) -> int:
        return len(self._mono.get(lang, ()))

    def cross_capacity(self) -> int:
        return len(self._cross)

    def usable_items(self) -> int:
        """Items that can appear in this sampler's batches (given ``alpha``)."""
        mask = np.zeros(len(self.table), dtype=bool)
        if self.alpha > 0:
            for items in self._mono.values():
                if len(items) >= 2:
                    mask[items] = True
        if self.alpha < 1 and len(self._cross) >= 2:
            mask[self._cross] = True
        return int(mask.sum())

    def __len__(self) -> int:
        key = (self.alpha, self.batch_size)
        if getattr(self, '_len_key', None) != key:  # the trainer asks often; alpha is set by the parent sampler
            self._len_key, self._len = key, self.usable_items() // self.batch_size
        return self._len

    # --- state -----------------------------------------------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        """Reset the item queues to a state that depends only on ``(seed, epoch, source name)``."""
        self._rng = np.random.default_rng([int(self.seed or 0), int(epoch), zlib.crc32(self.table.name.encode())])
        self._queues = {}

    def _queue(self, key: Any, items: np.ndarray) -> deque:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        if not queue:
            queue.extend(self._rng.permutation(items).tolist())
        return queue

    def _fill(self, key: Any, items: np.ndarray, make_row: Callable[[int], int | None]) -> list[int]:
        """Take items off the queue until the batch is full; defer those whose texts collide."""
        rows: list[int] = []
        texts: set[str] = set()
        deferred: list[int] = []
        budget = len(items) + self.batch_size  # at most about one pass over the items per batch
        while len(rows) < self.batch_size and budget > 0:
            budget -= 1
            item = self._queue(key, items).popleft()
            row = make_row(item)
            if row is None:
                continue
            # compared case- and space-insensitively: 'Tom.' and 'tom. ' would be near-identical vectors
            row_texts = [normalize_text(t) for t in self.table.row_texts(row) if t is not None]
            if len(set(row_texts)) < len(row_texts):
                continue  # query == positive (e.g. a name that is spelt the same in both languages)
            if texts.intersection(row_texts):
                deferred.append(item)
                continue
            rows.append(row)
            texts.update(row_texts)
        queue = self._queues[key]
        queue.extendleft(reversed(deferred))
        return rows

    # --- batches ---------------------------------------------------------------------------------
    def mono_batch(self, lang: str, rng: np.random.Generator) -> list[int]:
        """Rows of one batch whose queries and positives are all in ``lang``."""
        j = self.table.langs.index(lang)
        return self._fill(('mono', lang), self._mono[lang], lambda item: self.table.row_index(item, j, j))

    def cross_batch(self, rng: np.random.Generator) -> list[int]:
        """Rows of one batch where each row's query and positive languages differ (drawn per row)."""
        def make_row(item: int) -> int | None:
            q_langs = np.flatnonzero(self._q[item])
            p_langs = np.flatnonzero(self._p[item])
            # query languages that leave some other language for the positive
            q_ok = q_langs if len(p_langs) > 1 else q_langs[q_langs != p_langs[0]]
            if len(q_ok) == 0:
                return None
            lq = int(rng.choice(q_ok))
            lp = int(rng.choice(p_langs[p_langs != lq]))
            return self.table.row_index(item, lq, lp)

        return self._fill(('cross',), self._cross, make_row)

    def __iter__(self) -> Iterator[list[int]]:
        """Batches of this source alone: mono with probability ``alpha`` (language uniform), else cross."""
        self.start_epoch(self.epoch)
        rng = np.random.default_rng([int(self.seed or 0), int(self.epoch)])
        mono_langs = [l for l in self.languages if self.mono_capacity(l) >= 2]
        can_cross = self.cross_capacity() >= 2
        for _ in range(len(self)):
            mono = (rng.random() < self.alpha or not can_cross) and bool(mono_langs)
            rows = self.mono_batch(mono_langs[int(rng.integers(len(mono_langs)))], rng) if mono \
                else self.cross_batch(rng)
            if rows:
                yield rows


class HybridBatchSampler(MultiDatasetDefaultBatchSampler):
    """Each batch mono with probability ``alpha``, else cross; the source chosen per batch by size.

    Parameters
    ----------
    dataset : torch.utils.data.ConcatDataset
        The sources, concatenated (as sentence-transformers builds it from a ``DatasetDict``).
    batch_samplers : list of PairBatchSampler
        One per source, in the same order.
    generator : torch.Generator, optional
        Not used: batches depend on ``seed`` and the epoch only.
    seed : int
        Seed of every random choice.
    alpha : float
        Probability of a mono batch.
    weights : mapping of source name to float, optional
        Multiplies a source's size when choosing the source of a batch (default 1 each).
    shares : mapping of source name to float, optional
        Fixed probability, in (0, 1), that a batch is that source's own batch (its weight is then
        not used); the shares sum to less than 1 and at least one source has none.
    world_size : int
        Number of training processes (DDP). Every process draws the same seeded sequence and
        accelerate hands process ``r`` the batches ``r, r + world_size, ...``, so the processes train
        on different batches, each of them mono or cross as drawn; the length is rounded down to a
        multiple of ``world_size`` so that every process gets as many batches.
    """

    def __init__(self, dataset: Any, batch_samplers: list, generator: Any = None, seed: int = 0, *,
                 alpha: float = 0.5, weights: Mapping[str, float] | None = None,
                 shares: Mapping[str, float] | None = None, world_size: int = 1) -> None:
        super().__init__(dataset, batch_samplers=batch_samplers, generator=generator, seed=seed)
        if world_size < 1:
            raise ValueError(f"world_size must be at least 1, got {world_size}")
        self.world_size = int(world_size)
        if not all(isinstance(s, PairBatchSampler) for s in batch_samplers):
            raise TypeError("HybridBatchSampler needs one PairBatchSampler per source dataset")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = float(alpha)
        weights, shares = dict(weights or {}), dict(shares or {})
        names = [s.table.name for s in batch_samplers]
        for label, given in (('weights', weights), ('shares', shares)):
            unknown = sorted(set(given) - set(names))
            if unknown:
                raise ValueError(f"{label} name unknown source(s): {', '.join(unknown)}")
        self.weights = [float(weights.get(n, 1.0)) for n in names]
        self.shares = self._check_shares(names, shares)
        self.offsets = [0] + list(accumulate(len(d) for d in dataset.datasets))[:-1]
        bs = self.batch_size
        # the sources without a share split the batches left by the shares, as if alone
        free = [i for i in range(len(names)) if i not in self.shares and self.weights[i] > 0]
        langs = sorted({l for s in batch_samplers for l in s.languages})
        # mono: language uniform over those some source can fill a batch in; then source by size
        self.mono_choices: dict[str, tuple[list[int], np.ndarray]] = {}
        for lang in langs:
            idx = [i for i in free if batch_samplers[i].mono_capacity(lang) >= bs]
            if idx:
                size = np.array([batch_samplers[i].mono_capacity(lang) * self.weights[i] for i in idx], float)
                self.mono_choices[lang] = (idx, size / size.sum())
        self.mono_languages = tuple(self.mono_choices)
        idx = [i for i in free if batch_samplers[i].cross_capacity() >= bs]
        size = np.array([batch_samplers[i].cross_capacity() * self.weights[i] for i in idx], float)
        self.cross_choices = (idx, size / size.sum() if idx else size)
        others = ', '.join(n for i, n in enumerate(names) if i not in self.shares)
        if self.alpha > 0 and not self.mono_languages:
            raise ValueError(f"no source can fill a mono batch of {bs} rows in any language (sources: {others})")
        if self.alpha < 1 and not idx:
            raise ValueError(f"no source can fill a cross-lingual batch of {bs} rows (sources: {others}); "
                             "add a parallel corpus or use strategy 'mono'")
        # a source with a share draws its own batch kind: mono (language uniform) with probability
        # alpha, cross otherwise, or the one kind it can fill
        self.share_kinds: dict[int, tuple[tuple[str, ...], bool]] = {}
        for i in self.shares:
            s = batch_samplers[i]
            mono_langs = tuple(l for l in s.languages if s.mono_capacity(l) >= bs) if self.alpha > 0 else ()
            can_cross = self.alpha < 1 and s.cross_capacity() >= bs
            if not mono_langs and not can_cross:
                kind = 'mono' if self.alpha == 1 else 'cross-lingual' if self.alpha == 0 else 'mono or cross-lingual'
                raise ValueError(f"source {names[i]!r} has a share but cannot fill a {kind} batch of {bs} rows")
            self.share_kinds[i] = (mono_langs, can_cross)
        for s in batch_samplers:
            s.alpha = self.alpha

    @staticmethod
    def _check_shares(names: list[str], shares: Mapping[str, float]) -> dict[int, float]:
        """``{source index: share}``, in source order, after checking the values."""
        bad = {n: v for n, v in shares.items() if not 0.0 < float(v) < 1.0}
        if bad:
            raise ValueError(f"a share must be in (0, 1), got {', '.join(f'{n}={v}' for n, v in bad.items())}")
        if shares and sum(shares.values()) >= 1.0:
            raise ValueError(f"shares sum to {sum(shares.values()):g}: they must sum to less than 1")
        if shares and len(shares) == len(names):
            raise ValueError("every source has a share: leave one without, to take the rest of the batches")
        return {i: float(shares[n]) for i, n in enumerate(names) if n in shares}

    def __len__(self) -> int:
        n = sum(len(s) for s in self.batch_samplers)
        # a multiple of world_size: an uneven tail would give the processes different epoch lengths
        return max(self.world_size, n - n % self.world_size)

    def next_batch(self, rng: np.random.Generator) -> tuple[str, int, list[int]]:
        """Draw one batch: ``(kind, source index, rows local to that source)``."""
        if self.shares:  # without shares no draw is spent here: the batches of earlier runs stay the same
            u, edge = rng.random(), 0.0
            for source, share in self.shares.items():
                edge += share
                if u < edge:
                    return self._share_batch(source, rng)
        if rng.random() < self.alpha:
            lang = self.mono_languages[int(rng.integers(len(self.mono_languages)))]
            idx, prob = self.mono_choices[lang]
            source = idx[int(rng.choice(len(idx), p=prob))]
            return 'mono', source, self.batch_samplers[source].mono_batch(lang, rng)
        idx, prob = self.cross_choices
        source = idx[int(rng.choice(len(idx), p=prob))]
        return 'cross', source, self.batch_samplers[source].cross_batch(rng)

    def _share_batch(self, source: int, rng: np.random.Generator) -> tuple[str, int, list[int]]:
        mono_langs, can_cross = self.share_kinds[source]
        mono = bool(mono_langs) and (not can_cross or rng.random() < self.alpha)
        sampler = self.batch_samplers[source]
        if mono:
            return 'mono', source, sampler.mono_batch(mono_langs[int(rng.integers(len(mono_langs)))], rng)
        return 'cross', source, sampler.cross_batch(rng)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([int(self.seed or 0), int(self.epoch)])
        for sampler in self.batch_samplers:
            sampler.start_epoch(self.epoch)
        for _ in range(len(self)):
            for _attempt in range(100):
                _, source, rows = self.next_batch(rng)
                if rows:  # an empty draw (every candidate collided) is drawn again
                    break
            offset = self.offsets[source]
            yield [offset + r for r in rows]


class MonoBatchSampler(HybridBatchSampler):
    """X-X-mono: every batch is one language (``alpha = 1``)."""

    def __init__(self, dataset: Any, batch_samplers: list, generator: Any = None, seed: int = 0, *,
                 weights: Mapping[str, float] | None = None, shares: Mapping[str, float] | None = None,
                 world_size: int = 1, **_: Any) -> None:
        super().__init__(dataset, batch_samplers, generator, seed, alpha=1.0, weights=weights, shares=shares,
                         world_size=world_size)


class CrossBatchSampler(HybridBatchSampler):
    """X-Y: every row pairs a query with a positive in another language (``alpha = 0``)."""

    def __init__(self, dataset: Any, batch_samplers: list, generator: Any = None, seed: int = 0, *,
                 weights: Mapping[str, float] | None = None, shares: Mapping[str, float] | None = None,
                 world_size: int = 1, **_: Any) -> None:
        super().__init__(dataset, batch_samplers, generator, seed, alpha=0.0, weights=weights, shares=shares,
                         world_size=world_size)


def pair_or_sequential_sampler(dataset: Any, batch_size: int, drop_last: bool, valid_label_columns=None,
                               generator=None, seed: int = 0, *, alpha: float = 0.5,
                               languages: Sequence[str] | None = None) -> DefaultBatchSampler:
    """A :class:`PairBatchSampler` for a pair dataset; any other dataset (the fixed validation
    batches) is read in order, ``batch_size`` rows at a time."""
    if pair_table(dataset) is None:
        return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last,
                                   valid_label_columns=valid_label_columns, generator=generator, seed=seed)
    return PairBatchSampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed,
                            alpha=alpha, languages=languages)


def make_samplers(strategy: str, alpha: float = 0.5, languages: Sequence[str] | None = None,
                  weights: Mapping[str, float] | None = None,
                  shares: Mapping[str, float] | None = None, world_size: int = 1) -> tuple[Callable, Callable]:
    """``(batch_sampler, multi_dataset_batch_sampler)`` for ``SentenceTransformerTrainingArguments``.

    ``weights``, ``shares`` and ``world_size`` are as for :class:`HybridBatchSampler`. Both
    results are ``functools.partial`` objects of module-level callables, so the training arguments
    stay picklable (the trainer saves them with every checkpoint).
    """
    mono_prob = strategy_alpha(strategy, alpha)
    languages = tuple(languages) if languages is not None else None
    return (partial(pair_or_sequential_sampler, alpha=mono_prob, languages=languages),
            partial(HybridBatchSampler, alpha=mono_prob, weights=dict(weights or {}), shares=dict(shares or {}),
                    world_size=world_size))
