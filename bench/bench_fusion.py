"""Benchmark: RRF fusion of a dense and a BM25 run for every XQuAD-R setting, ours vs ``pyserini.fusion``.

Both sides do what ``python -m pyserini_hybrid.search --fusion`` does per setting with run files
already on disk: read the two runs, fuse them (RRF, k=60) and write the fused run.

- ours, as the CLI runs it: :func:`~pyserini_hybrid.search.fuse_run_files`, the settings in one
  process per core, for all settings (the median of three runs);
- ours in one process, timed by step: :func:`~pyserini_hybrid._trec.read_run_columns`,
  :func:`~pyserini_hybrid.search.fuse_columns` and :func:`~pyserini_hybrid._trec.write_run` on columns;
- baseline: ``pyserini.trectools.TrecRun`` to read, ``pyserini.fusion.reciprocal_rank_fusion`` and
  ``TrecRun.save_to_txt`` to write, on a few settings (default three: one mono, one cross and the
  multilingual one), its total extrapolated from its cost per input hit.

The input runs are synthetic but shaped like the real ones: the real pool's settings, queries and
candidate documents (so the ids, the query counts and the 13k-document multilingual pool are real),
``--hits`` hits per query from each side, half of BM25's hits also in the dense run, scores drawn at
random (fusion time does not depend on the values, and no model has to be run). The fused runs of the
baseline settings are compared with ours: same documents in the same order, scores equal at the 6
decimals a run file carries (tests/test_fusion.py checks them to 1e-9 in memory).

    python bench/bench_fusion.py                      # all 122 settings, 100 hits (about a minute)
    python bench/bench_fusion.py --settings lareqa/xquad-r/en lareqa/xquad-r --hits 1000

Writes ``bench/results/fusion-<cpu kind>.json`` and ``.md`` (committed: one table per CPU kind).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import pyserini_hybrid  # noqa: F401  (Java set-up before pyserini)
from pyserini_hybrid._io import atomic_write
from pyserini_hybrid._trec import read_run, read_run_columns, write_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe, machine_line, tag  # noqa: E402  (bench/ is not a package)

RESULTS = Path(__file__).resolve().parent / 'results'
DEFAULT_BASELINE = ['lareqa/xquad-r/en', 'lareqa/xquad-r/en-de', 'lareqa/xquad-r']   # mono, cross, multi


def make_runs(pool, settings: list[str], hits: int, directory: Path, seed: int = 0) -> dict[str, tuple[Path, Path]]:
    """Write a dense-like and a BM25-like run per setting; returns their paths."""
    from pyserini_hybrid.datasets import run_filename

    rng = np.random.default_rng(seed)
    paths = {}
    for sub in ('dense', 'bm25'):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    for dataset_id in settings:
        qids = [pool.queries[i].query_id for i in pool.query_indices(dataset_id)]
        docids = np.array([pool.docs[i].doc_id for i in pool.doc_indices(dataset_id)], dtype=object)
        k = min(hits, len(docids))
        dense, bm25 = {}, {}
        for qid in qids:
            picked = docids[rng.choice(len(docids), size=k + k // 2, replace=False)] if len(docids) >= k + k // 2 \
                else docids[rng.permutation(len(docids))]
            dense_docs, bm25_docs = picked[:k], np.r_[picked[:k // 2], picked[k:k + k - k // 2]][:k]
            dense[qid] = list(zip(dense_docs.tolist(), np.sort(rng.uniform(0.6, 0.95, k))[::-1].round(6).tolist()))
            bm25[qid] = list(zip(bm25_docs.tolist(), np.sort(rng.gamma(4.0, 3.0, len(bm25_docs)))[::-1]
                                 .round(4).tolist()))
        name = run_filename(dataset_id)
        paths[dataset_id] = (write_run(dense, directory / 'dense' / name, tag='dense', hits=hits),
                             write_run(bm25, directory / 'bm25' / name, tag='bm25', hits=hits))
    return paths


def ours(paths: dict[str, tuple[Path, Path]], hits: int, out_dir: Path) -> dict:
    """Read, fuse and write every setting on columns (what the CLI does)."""
    from pyserini_hybrid.search import fuse_columns

    read_s = fuse_s = write_s = 0.0
    t0 = time.perf_counter()
    for dataset_id, (dense_path, bm25_path) in paths.items():
        a = time.perf_counter()
        runs = [read_run_columns(dense_path), read_run_columns(bm25_path)]
        b = time.perf_counter()
        fused = fuse_columns(runs, method='rrf', rrf_k=60, hits=hits)
        c = time.perf_counter()
        write_run(fused, out_dir / dense_path.name, tag='pyserini_hybrid.fusion', hits=hits)
        read_s, fuse_s, write_s = read_s + b - a, fuse_s + c - b, write_s + time.perf_counter() - c
    return {'settings': len(paths), 'read_s': round(read_s, 2), 'fuse_s': round(fuse_s, 2),
            'write_s': round(write_s, 2), 'total_s': round(time.perf_counter() - t0, 2)}


def ours_parallel(paths: dict[str, tuple[Path, Path]], hits: int, out_dir: Path, repeats: int = 3) -> dict:
    """What ``python -m pyserini_hybrid.search --retriever fusion --runs-dense D --runs-bm25 B`` does;
    the median of ``repeats`` runs (the first follows the writing of ~2 GB of input runs, whose
    write-back to disk can still be competing with it)."""
    from pyserini_hybrid.search import fuse_run_files

    workers = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fuse_run_files([(pair, out_dir / pair[0].name) for pair in paths.values()], method='rrf', rrf_k=60,
                       hits=hits, workers=workers)
        times.append(round(time.perf_counter() - t0, 2))
    return {'settings': len(paths), 'processes': min(workers, len(paths)),
            'total_s': float(np.median(times)), 'runs_s': times}


def baseline(paths: dict[str, tuple[Path, Path]], subset: list[str], hits: int, out_dir: Path) -> dict:
    """``pyserini.fusion.reciprocal_rank_fusion`` with ``TrecRun`` reading and writing, on ``subset``."""
    from pyserini.fusion import reciprocal_rank_fusion
    from pyserini.trectools import TrecRun

    per_setting = []
    for dataset_id in subset:
        dense_path, bm25_path = paths[dataset_id]
        a = time.perf_counter()
        fused = reciprocal_rank_fusion([TrecRun(str(dense_path)), TrecRun(str(bm25_path))], rrf_k=60,
                                       depth=hits, k=hits)
        fused.save_to_txt(str(out_dir / dense_path.name), tag='pyserini.fusion')
        per_setting.append({'setting': dataset_id, 'input_hits': _hits(dense_path) + _hits(bm25_path),
                            'seconds': round(time.perf_counter() - a, 3)})
    return {'subset': per_setting,
            'seconds_per_input_hit': sum(s['seconds'] for s in per_setting) / sum(s['input_hits'] for s in per_setting)}


def _hits(path: Path) -> int:
    with open(path, 'rb') as fh:
        return sum(1 for _ in fh)


def agree(ours_path: Path, theirs_path: Path) -> bool:
    """Same documents in the same order per query, and the same score at the written precision.

    Our runs carry 6 decimals (as Pyserini's searchers write them), ``TrecRun.save_to_txt`` the full
    float; tests/test_fusion.py compares the fused scores in memory to 1e-9.
    """
    a, b = read_run(ours_path), read_run(theirs_path)
    if a.keys() != b.keys():
        return False
    return all([d for d, _ in a[q]] == [d for d, _ in b[q]]
               and np.allclose([s for _, s in a[q]], [round(s, 6) for _, s in b[q]], rtol=0, atol=1e-9)
               for q in a)


def main(argv: list[str] | None = None) -> int:
    from pyserini_hybrid.datasets import list_settings, load_pool

    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--collection', default='xquad-r')
    p.add_argument('--hits', type=int, default=100, help='hits per query in each input and the fused run')
    p.add_argument('--settings', nargs='*', default=None, help='setting ids to fuse (default: all)')
    p.add_argument('--baseline-settings', nargs='*', default=DEFAULT_BASELINE,
                   help='settings also fused through pyserini.fusion (none: skip it)')
    p.add_argument('--output', default=str(RESULTS / f'fusion-{tag()}'),
                   help='results path without extension (default: named by the CPU kind)')
    args = p.parse_args(argv)

    pool = load_pool(args.collection)
    settings = args.settings or [s.dataset_id for s in list_settings(args.collection)]
    subset = [s for s in args.baseline_settings if s in settings]
    work = Path(tempfile.mkdtemp(prefix='bench_fusion.'))
    try:
        paths = make_runs(pool, settings, args.hits, work)
        input_hits = sum(_hits(d) + _hits(b) for d, b in paths.values())
        (work / 'ours').mkdir()
        (work / 'parallel').mkdir()
        cli = ours_parallel(paths, args.hits, work / 'parallel')
        fast = ours(paths, args.hits, work / 'ours')
        slow, same = None, None
        if subset:
            (work / 'pyserini').mkdir()
            slow = baseline(paths, subset, args.hits, work / 'pyserini')
            slow['extrapolated_total_s'] = round(slow['seconds_per_input_hit'] * input_hits, 1)
            same = all(agree(work / side / paths[s][0].name, work / 'pyserini' / paths[s][0].name)
                       for s in subset for side in ('ours', 'parallel'))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {'benchmark': 'RRF fusion of every setting (read, fuse, write)', 'collection': args.collection,
              'hits': args.hits, 'input_hits': input_hits,
              'machine': dict(describe(), load_avg_at_end=os.getloadavg()),
              'ours_cli': cli, 'ours': fast, 'pyserini_fusion': slow, 'fused_runs_agree_with_pyserini': same}
    if slow:
        result['speedup_vs_pyserini'] = round(slow['extrapolated_total_s'] / fast['total_s'], 1)
        result['cli_speedup_vs_pyserini'] = round(slow['extrapolated_total_s'] / cli['total_s'], 1)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out.with_suffix('.json')) as fh:
        json.dump(result, fh, indent=2)
        fh.write('\n')
    lines = [f"# RRF fusion of {fast['settings']} {args.collection} settings ({args.hits} hits a query from each "
             f"side, {input_hits:,} input hits)", '',
             '| pipeline | read s | fuse s | write s | total s | per setting s | vs pyserini.fusion |',
             '|---|---|---|---|---|---|---|',
             f"| ours as the CLI runs it ({cli['processes']} processes, median of {len(cli['runs_s'])}: "
             f"{' / '.join(map(str, cli['runs_s']))} s) | | | | {cli['total_s']} "
             f"| {cli['total_s'] / cli['settings']:.3f} | {result.get('cli_speedup_vs_pyserini', '')}x |",
             f"| ours in one process (columns) | {fast['read_s']} | {fast['fuse_s']} | {fast['write_s']} | {fast['total_s']} "
             f"| {fast['total_s'] / fast['settings']:.3f} | {result.get('speedup_vs_pyserini', '')}x |"]
    if slow:
        lines += [f"| pyserini.fusion + TrecRun, extrapolated from {len(subset)} setting(s) | | | | "
                  f"{slow['extrapolated_total_s']} | {slow['extrapolated_total_s'] / fast['settings']:.3f} | 1x |", '',
                  'Baseline subset: ' + ', '.join(f"{s['setting']} {s['seconds']} s for {s['input_hits']:,} input hits"
                                                  for s in slow['subset'])
                  + ' (extrapolated linearly in input hits).', '',
                  f"Fused runs of the baseline settings agree with pyserini.fusion (documents, order, scores at the "
                  f"6 decimals a run file carries): {same}."]
    lines += ['', machine_line(result['machine']), '', f"Load average at the end {os.getloadavg()[0]:.1f} (other jobs "
              f"shared the CPUs when it is above {os.cpu_count()}). Times are wall clock."]
    with atomic_write(out.with_suffix('.md')) as fh:
        fh.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0 if same is not False else 1


if __name__ == '__main__':
    sys.exit(main())
