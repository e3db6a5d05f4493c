"""Benchmark: dense search of every XQuAD-R setting, embed-once pipeline vs a naive per-setting one.

Ours (``pyserini_hybrid.search``): embed each distinct text of the pool once (cached on disk),
then score all settings as matrix work and write one TREC run per setting. Measured end to end
from a cold cache (an empty cache directory) and again from the warm cache.

Naive: what a user of stock Pyserini does per setting: encode the setting's corpus with a
``pyserini.encode.DocumentEncoder`` (our ``HybridDocumentEncoder``), write a FAISS index, open it
with ``pyserini.search.faiss.FaissSearcher`` and our ``HybridQueryEncoder``, batch-search the
setting's queries and write the run. Every setting re-encodes its corpus and queries. Running it
over all settings takes hours on 2 cores, so a subset of settings is timed and the total is
extrapolated from its cost per encoded text times the texts the full grid encodes (said so in
the results).

    python bench/bench_search.py                       # all of it (cold cache: ~10 min at fp32 on 2 idle cores)
    python bench/bench_search.py --precision int8 --naive-settings lareqa/xquad-r/en

Writes ``bench/results/search-<cpu kind>.json`` and ``.md`` (committed: one table per CPU kind).
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

import pyserini_hybrid  # noqa: F401  (Java set-up before pyserini)
from pyserini_hybrid._io import atomic_write
from pyserini_hybrid.encoders import PRECISIONS
from pyserini_hybrid._trec import write_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe, machine_line, tag  # noqa: E402  (bench/ is not a package)

RESULTS = Path(__file__).resolve().parent / 'results'


def ours(collection: str, encoder_name: str, precision: str, batch_size: int, cache_dir: Path, hits: int,
         out_dir: Path) -> dict:
    """Embed-once pipeline, end to end (model load, embedding, search, run files)."""
    from pyserini_hybrid.datasets import list_settings, load_pool, run_filename
    from pyserini_hybrid.encoders import Encoder
    from pyserini_hybrid.search import embed_pool, iter_dense_runs

    t0 = time.perf_counter()
    pool = load_pool(collection)
    encoder = Encoder(encoder_name, precision=precision, batch_size=batch_size)
    t1 = time.perf_counter()
    q_emb, d_emb = embed_pool(pool, encoder, cache_dir, show_progress=True)
    t2 = time.perf_counter()
    settings = list_settings(collection)
    search_s = write_s = 0.0
    it = iter_dense_runs(pool, q_emb, d_emb, settings, hits)
    while True:
        a = time.perf_counter()
        try:
            dataset_id, run = next(it)
        except StopIteration:
            break
        b = time.perf_counter()
        write_run(run, out_dir / run_filename(dataset_id), tag='pyserini_hybrid.dense', hits=hits)
        search_s += b - a
        write_s += time.perf_counter() - b
    total = time.perf_counter() - t0
    return {'settings': len(settings), 'load_s': round(t1 - t0, 2), 'embed_s': round(t2 - t1, 2),
            'search_s': round(search_s, 2), 'write_s': round(write_s, 2), 'total_s': round(total, 2),
            'texts': len(pool.docs) + len(pool.queries)}


def naive(collection: str, encoder_name: str, precision: str, batch_size: int, hits: int, subset: list[str],
          work: Path) -> dict:
    """Per-setting Pyserini pipeline (HybridDocumentEncoder -> FAISS -> FaissSearcher) on ``subset``."""
    from pyserini.search.faiss import FaissSearcher

    from pyserini_hybrid.datasets import list_settings, load_pool, run_filename
    from pyserini_hybrid.encoders import HybridDocumentEncoder, HybridQueryEncoder
    from pyserini_hybrid.search import write_faiss_index

    pool = load_pool(collection)
    t0 = time.perf_counter()
    doc_encoder = HybridDocumentEncoder(encoder_name, precision=precision, batch_size=batch_size)
    query_encoder = HybridQueryEncoder(doc_encoder.encoder)  # one model in memory for both
    load_s = time.perf_counter() - t0
    per_setting = []
    for dataset_id in subset:
        a = time.perf_counter()
        docs = [pool.docs[i] for i in pool.doc_indices(dataset_id)]
        queries = [pool.queries[i] for i in pool.query_indices(dataset_id)]
        vectors = doc_encoder.encode([d.text for d in docs])
        index_dir = write_faiss_index(work / 'index', vectors, [d.doc_id for d in docs])
        searcher = FaissSearcher(str(index_dir), query_encoder)
        results = searcher.batch_search([q.text for q in queries], [q.query_id for q in queries], k=hits,
                                        threads=os.cpu_count() or 1)
        run = {qid: [(h.docid, float(h.score)) for h in hits_] for qid, hits_ in results.items()}
        write_run(run, work / run_filename(dataset_id), tag='naive', hits=hits)
        per_setting.append({'setting': dataset_id, 'texts': len(docs) + len(queries),
                            'seconds': round(time.perf_counter() - a, 2)})
    texts = sum(s['texts'] for s in per_setting)
    seconds = sum(s['seconds'] for s in per_setting)
    grid_texts = sum(len(pool.doc_indices(s)) + len(pool.query_indices(s)) for s in list_settings(collection))
    return {'load_s': round(load_s, 2), 'subset': per_setting, 'seconds_per_text': seconds / texts,
            'grid_texts': grid_texts, 'extrapolated_total_s': round(load_s + seconds / texts * grid_texts, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--collection', default='xquad-r')
    p.add_argument('--encoder', default='me5-small-offline')
    p.add_argument('--precision', default='fp32', choices=PRECISIONS)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--hits', type=int, default=1000)
    p.add_argument('--cache-dir', default=None,
                   help='embedding cache to start from (default: a new empty one, i.e. a cold start)')
    p.add_argument('--naive-settings', nargs='*', default=['lareqa/xquad-r/en', 'lareqa/xquad-r/en-de'],
                   help='settings timed through the naive pipeline (none: skip it)')
    p.add_argument('--output', default=str(RESULTS / f'search-{tag()}'),
                   help='results path without extension (default: named by the CPU kind)')
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix='bench_search.'))
    try:
        cache = Path(args.cache_dir) if args.cache_dir else work / 'cache'
        (work / 'runs1').mkdir()
        (work / 'runs2').mkdir()
        first = ours(args.collection, args.encoder, args.precision, args.batch_size, cache, args.hits, work / 'runs1')
        if args.cache_dir:
            # A given cache is warm already: one pass measures the warm case.
            warm, same, first = first, None, None
        else:
            warm = ours(args.collection, args.encoder, args.precision, args.batch_size, cache, args.hits,
                        work / 'runs2')
            same = all((work / 'runs1' / f.name).read_bytes() == f.read_bytes() for f in (work / 'runs2').iterdir())
        slow = None
        if args.naive_settings:
            (work / 'naive').mkdir()
            slow = naive(args.collection, args.encoder, args.precision, args.batch_size, args.hits,
                         args.naive_settings, work / 'naive')
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {'benchmark': 'dense search of every setting', 'collection': args.collection, 'encoder': args.encoder,
              'precision': args.precision, 'batch_size': args.batch_size, 'hits': args.hits,
              'machine': dict(describe(), load_avg_at_end=os.getloadavg()),
              'ours_cold': first, 'ours_warm': warm, 'warm_runs_identical_to_cold': same, 'naive': slow}
    if slow:
        for name, part in (('cold', first), ('warm', warm)):
            if part:
                result[f'speedup_vs_naive_{name}'] = round(slow['extrapolated_total_s'] / part['total_s'], 1)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out.with_suffix('.json')) as fh:
        json.dump(result, fh, indent=2)
        fh.write('\n')
    lines = [f"# Dense search of all {warm['settings']} {args.collection} setting ids "
             f"({args.encoder}, {args.precision}, {args.hits} hits)", '',
             '| pipeline | load s | embed s | search s | write runs s | total s | vs naive |',
             '|---|---|---|---|---|---|---|']
    for label, part, key in (('ours, cold cache', first, 'cold'), ('ours, warm cache', warm, 'warm')):
        if part:
            lines.append(f"| {label} | {part['load_s']} | {part['embed_s']} | {part['search_s']} | {part['write_s']} "
                         f"| {part['total_s']} | {result.get(f'speedup_vs_naive_{key}', '')}x |")
    if slow:
        lines.append(f"| naive per-setting Pyserini, extrapolated from {len(slow['subset'])} setting(s) | "
                     f"{slow['load_s']} | | | | {slow['extrapolated_total_s']} | 1x |")
        lines += ['', "Naive subset: " + ', '.join(f"{s['setting']} {s['seconds']} s for {s['texts']} texts"
                                                for s in slow['subset'])
                  + f"; the grid encodes {slow['grid_texts']} texts in all (extrapolated linearly)."]
    if same is not None:
        lines += ['', f"Warm-cache runs byte-identical to the cold-cache ones: {same}."]
    lines += ['', machine_line(result['machine']), '', f"Load average at the end {os.getloadavg()[0]:.1f} (other jobs "
                  f"shared the CPUs when it is above {os.cpu_count()}). Times are wall clock."]
    with atomic_write(out.with_suffix('.md')) as fh:
        fh.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
