"""Fusion of runs (dense + BM25): ``pyserini.fusion``'s RRF and interpolation, vectorised with numpy.

- ``rrf``: reciprocal rank fusion, score = sum over runs of 1 / (rrf_k + rank);
- ``interpolation``: score = alpha * first + (1 - alpha) * second, on the runs' raw scores, as
  ``pyserini.fusion.interpolation`` does (a document missing from a run adds 0 from it). Dense
  cosine scores and BM25 scores live on different scales, so alpha has to absorb that; RRF needs
  no tuning and is the default.

The results are those of ``pyserini.fusion`` bit for bit (the tests compare both): ranks are the
positions in score-descending, docid-ascending order; ``depth`` keeps that many hits of each input
run, ``hits`` that many fused hits; per-document sums are Kahan-compensated in input-run order as
pandas' ``groupby().sum()`` computes them; ties are broken by docid ascending. Going through
pandas ``TrecRun`` objects cost ~2 s a setting at 100 hits for 1,190 queries; this is array work
on :class:`~pyserini_hybrid._trec.RunColumns`, which the CLI reads from and writes to run files
without Python objects per hit (:func:`fuse_runs` converts a :data:`Run` both ways).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pyserini_hybrid._trec import Run, RunColumns, _block_starts, read_run_columns, write_run

__all__ = ['FUSION_METHODS', 'fuse_columns', 'fuse_run_files', 'fuse_runs']

FUSION_METHODS = ('rrf', 'interpolation')


def _kahan_step(total: np.ndarray, compensation: np.ndarray, g: np.ndarray, v: np.ndarray) -> None:
    """Add ``v`` to groups ``g`` (each at most once) as pandas' compensated ``group_sum`` does."""
    y = v - compensation[g]
    t = total[g] + y
    c = (t - total[g]) - y
    compensation[g] = np.where(np.isnan(c), 0.0, c)   # pandas resets a NaN compensation (infinite values)
    total[g] = t


def _kahan_group_sum(groups: list[np.ndarray], values: list[np.ndarray], n_groups: int) -> np.ndarray:
    """Per-group sums of the runs' values in input order (run by run), Kahan-compensated as pandas'
    ``groupby().sum()`` computes them."""
    total = np.zeros(n_groups)
    compensation = np.zeros(n_groups)
    if all(np.bincount(g, minlength=n_groups).max(initial=0) <= 1 for g in groups):
        # A group's first value lands on (0, 0) exactly, so a run that lacks it changes nothing:
        # one step per run is the same as one step per occurrence.
        for g, v in zip(groups, values):
            _kahan_step(total, compensation, g, v)
        return total
    # A run repeats a (query, docid): one step per occurrence, in input order.
    flat_groups, flat_values = np.concatenate(groups), np.concatenate(values)
    order = np.argsort(flat_groups, kind='stable')
    occurrence = np.empty(len(flat_groups), dtype=np.int64)
    occurrence[order] = np.arange(len(flat_groups)) - _block_starts(flat_groups[order])
    for level in range(int(occurrence.max(initial=-1)) + 1):
        at = occurrence == level
        _kahan_step(total, compensation, flat_groups[at], flat_values[at])
    return total


def fuse_runs(runs: Sequence[Run], method: str = 'rrf', rrf_k: int = 60, alpha: float = 0.5,
              hits: int = 1000, depth: int | None = None) -> Run:
    """Fuse runs as ``pyserini.fusion`` does (same scores, same order, ties included).

    Parameters
    ----------
    runs : sequence of Run
        At least two runs (exactly two for interpolation: ``alpha`` weights the first).
    method : str
        ``'rrf'`` or ``'interpolation'``.
    rrf_k : int
        RRF constant (Cormack et al.: 60).
    alpha : float
        Interpolation weight of the first run, in [0, 1].
    hits : int
        Hits per query kept after fusion (``pyserini.fusion``'s ``k``).
    depth : int, optional
        Hits of each input run considered (``pyserini.fusion``'s ``depth``); default all.

    Returns
    -------
    Run
        Score descending, then docid ascending, queries in sorted order. Every query with a hit in an
        input run appears.
    """
    _check(runs, method, rrf_k, alpha, hits, depth)
    return fuse_columns([RunColumns.from_run(run) for run in runs], method, rrf_k, alpha, hits, depth).to_run()


def _check(runs, method, rrf_k, alpha, hits, depth) -> None:
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {', '.join(FUSION_METHODS)}, got {method!r}")
    if hits <= 0:
        raise ValueError(f"hits must be positive, got {hits}")
    if depth is not None and depth <= 0:
        raise ValueError(f"depth must be positive, got {depth}")
    if len(runs) < 2:
        raise ValueError(f"fusion needs at least two runs, got {len(runs)}")
    if method == 'interpolation' and len(runs) != 2:
        raise ValueError(f"interpolation fuses exactly two runs, got {len(runs)}")
    if method == 'rrf' and rrf_k < 0:
        raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
    if method == 'interpolation' and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def _union(names: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The sorted union of id arrays (Python's str order) and each array's codes into it."""
    union = np.unique(np.concatenate(names)) if sum(map(len, names)) else np.zeros(0, dtype=object)
    return union, [np.searchsorted(union, n).astype(np.int64) for n in names]


def fuse_columns(runs: Sequence[RunColumns], method: str = 'rrf', rrf_k: int = 60, alpha: float = 0.5,
                 hits: int = 1000, depth: int | None = None) -> RunColumns:
    """:func:`fuse_runs` on :class:`RunColumns`; the result's qids are sorted."""
    _check(runs, method, rrf_k, alpha, hits, depth)
    topic_names, topic_codes = _union([run.qids for run in runs])
    doc_names, doc_codes = _union([run.docids for run in runs])
    n_docs = max(len(doc_names), 1)
    keys, values = [], []
    for index, run in enumerate(runs):
        # a query's hits are consecutive and in sort_hits order: pyserini's rank is the position
        ranks = np.arange(len(run.query)) - _block_starts(run.query) + 1
        keep = slice(None) if depth is None else ranks <= depth
        if method == 'rrf':
            values.append(1 / (int(rrf_k) + ranks[keep]))
        else:
            values.append(run.score[keep] * (float(alpha) if index == 0 else 1 - float(alpha)))
        keys.append(topic_codes[index][run.query[keep]] * n_docs + doc_codes[index][run.doc[keep]])
    all_keys = np.concatenate(keys)
    if not len(all_keys):
        return RunColumns.from_run({})
    unique, groups = np.unique(all_keys, return_inverse=True)
    groups = np.split(groups.ravel(), np.cumsum([len(k) for k in keys])[:-1])
    total = _kahan_group_sum(groups, values, len(unique))
    topics, docs = unique // n_docs, unique % n_docs
    # unique keys are sorted by (topic, docid); a stable sort by (topic, -score) keeps docid ascending on ties
    order = np.lexsort((-total, topics))
    topics, docs, total = topics[order], docs[order], total[order]
    keep = np.arange(len(topics)) - _block_starts(topics) < hits
    return RunColumns(topic_names, doc_names, topics[keep], docs[keep], total[keep])


def _fuse_files(inputs: tuple[Path, ...], output: Path, tag: str, options: dict) -> Path:
    return write_run(fuse_columns([read_run_columns(path) for path in inputs], **options), output, tag=tag,
                     hits=options['hits'])


def fuse_run_files(jobs: Sequence[tuple[Sequence[str | os.PathLike], str | os.PathLike]], method: str = 'rrf',
                   rrf_k: int = 60, alpha: float = 0.5, hits: int = 1000, depth: int | None = None,
                   tag: str = 'pyserini_hybrid.fusion', workers: int | None = None,
                   progress: Callable[[Path], None] | None = None) -> list[Path]:
    """Fuse run files into run files: each job is ``(input paths, output path)``, as :func:`fuse_columns`.

    Settings are independent, so they are fused in ``workers`` processes (default: one per CPU core,
    at most one per job), largest inputs first; each output is written atomically, and ``progress``
    is called with each as it is written. Returns the outputs in job order.
    """
    jobs = [(tuple(Path(p) for p in inputs), Path(output)) for inputs, output in jobs]
    for inputs, _ in jobs:   # bad options fail here, not in a worker
        _check(inputs, method, rrf_k, alpha, hits, depth)
    options = dict(method=method, rrf_k=rrf_k, alpha=alpha, hits=hits, depth=depth)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    workers = min(workers, len(jobs))
    if workers <= 1:
        written = []
        for inputs, output in jobs:
            written.append(_fuse_files(inputs, output, tag, options))
            if progress:
                progress(written[-1])
        return written
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # Largest inputs first: the Multi setting is ~10x a Cross one, and last in setting order it would
    # leave the other workers idle at the end.
    def size(inputs: tuple[Path, ...]) -> int:
        return sum(p.stat().st_size for p in inputs if p.is_file())   # a missing file fails in its worker

    order = sorted(range(len(jobs)), key=lambda j: -size(jobs[j][0]))
    # spawn, not fork: the parent may hold threads (pyarrow's pool, a JVM) that a fork would copy half-done
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn')) as executor:
        futures = {executor.submit(_fuse_files, *jobs[j], tag, options): j for j in order}
        done: dict[int, Path] = {}
        try:
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                if progress:
                    progress(done[futures[future]])
        except BaseException:
            executor.shutdown(cancel_futures=True)   # the first failure stops the settings not yet started
            raise
    return [done[j] for j in range(len(jobs))]
