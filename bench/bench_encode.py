"""Benchmark: encoding throughput of our Encoder vs plain ``SentenceTransformer.encode`` fp32.

Both encode the same ~1,000 real XQuAD-R texts (every language, candidates and questions mixed,
passage prefix applied) with the same model in one process. Plain sentence-transformers is the
baseline (fp32, its own char-length sorting, batch 32); ours is
:class:`pyserini_hybrid.encoders.Encoder` (token-length sorting) at each precision. Every variant
runs with the same torch threads: 1 by default, because on a shared machine two OpenMP threads
that wait on each other make wall times meaningless (``--threads 0`` keeps torch's default). To
share the noise of a busy machine fairly, the texts are split into rounds and every variant
encodes each round in turn (rotating who goes first); CPU time is recorded beside wall time. Quality: cosine of each variant's vectors to the
baseline's; ``--mono-en`` also scores XQuAD-R Mono-en mAP (full pool) per variant, which encodes
every English query and candidate per variant (minutes at fp32).

    python bench/bench_encode.py                         # default run: ~2-3 min on an idle machine
    python bench/bench_encode.py --precisions fp32 bf16 int8 --threads 0 --mono-en

Writes ``bench/results/encode-<cpu kind>.json`` and ``.md`` (committed: one table per CPU kind). me5-small-offline is
dequantised 4-bit weights (not the original fp32 checkpoint); say so with any number from it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import pyserini_hybrid  # noqa: F401  (Java set-up, as everywhere)
from pyserini_hybrid._io import atomic_write
from pyserini_hybrid.encoders import PRECISIONS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe, machine_line, tag  # noqa: E402  (bench/ is not a package)

RESULTS = Path(__file__).resolve().parent / 'results'
BASELINE = 'st-fp32'


def sample_texts(collection: str, per_lang: int, data_dir: str | None) -> list[str]:
    """``per_lang`` candidates and ``per_lang`` questions of every language, spread over the pool."""
    from pyserini_hybrid.datasets import load_pool

    pool = load_pool(collection, data_dir=data_dir)
    texts = []
    for lang in sorted({d.lang for d in pool.docs}):
        for items in ([d.text for d in pool.docs if d.lang == lang], [q.text for q in pool.queries if q.lang == lang]):
            step = max(1, len(items) // per_lang)
            texts += items[::step][:per_lang]
    return texts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--encoder', default='me5-small-offline')
    p.add_argument('--collection', default='xquad-r')
    p.add_argument('--data-dir', default=None, help='LAReQA data directory (default: $PYSERINI_HYBRID_DATA)')
    p.add_argument('--per-lang', type=int, default=45, help='candidates and questions per language (default 45: 990 texts)')
    p.add_argument('--precisions', nargs='+', default=None, choices=PRECISIONS,
                   help='default: fp32 int8, plus bf16 where the CPU has native bfloat16')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--threads', type=int, default=1,
                   help="torch threads for every variant (default 1; 0 keeps torch's default)")
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--mono-en', action='store_true', help='also score XQuAD-R Mono-en mAP per variant (slow)')
    p.add_argument('--output', default=str(RESULTS / f'encode-{tag()}'),
                   help='results path without extension (default: named by the CPU kind)')
    args = p.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from pyserini_hybrid.encoders import Encoder, get_spec, model_path
    from pyserini_hybrid.encoders._model import native_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = args.precisions or ['fp32', 'int8'] + (['bf16'] if native_bf16() else [])
    texts = sample_texts(args.collection, args.per_lang, args.data_dir)
    load_before = os.getloadavg()

    variants = {}
    plain = SentenceTransformer(str(model_path(args.encoder)), device='cpu')
    passage_prefix = get_spec(args.encoder).passage_prefix
    variants[BASELINE] = lambda batch: plain.encode([passage_prefix + t.strip() for t in batch],
                                                    batch_size=args.batch_size, convert_to_numpy=True)
    encoders = {}
    for precision in precisions:
        encoders[precision] = Encoder(args.encoder, precision=precision, batch_size=args.batch_size, device='cpu')
        variants[f'ours-{precision}'] = encoders[precision].encode_passages

    for encode in variants.values():          # warm-up: first-call allocations, lazy kernels
        encode(texts[:8])
    rounds = np.array_split(np.arange(len(texts)), args.rounds)
    seconds = {name: 0.0 for name in variants}
    cpu_seconds = {name: 0.0 for name in variants}
    vectors = {}
    outputs = {name: [] for name in variants}
    names = list(variants)
    for r, idx in enumerate(rounds):
        batch = [texts[i] for i in idx]
        for name in names[r % len(names):] + names[:r % len(names)]:
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs[name].append(variants[name](batch))
            seconds[name] += time.perf_counter() - start
            cpu_seconds[name] += time.process_time() - cpu_start
    for name in names:
        vectors[name] = np.vstack(outputs[name]).astype(np.float32)

    base = vectors[BASELINE]
    base_rate = len(texts) / seconds[BASELINE]
    base_cpu_rate = len(texts) / cpu_seconds[BASELINE]
    rows = []
    for name in names:
        v = vectors[name]
        cos = (v * base).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(base, axis=1)
        rate, cpu_rate = len(texts) / seconds[name], len(texts) / cpu_seconds[name]
        rows.append({'variant': name, 'seconds': round(seconds[name], 2), 'texts_per_s': round(rate, 2),
                     'speedup': round(rate / base_rate, 3), 'cpu_seconds': round(cpu_seconds[name], 2),
                     'texts_per_cpu_s': round(cpu_rate, 2), 'cpu_speedup': round(cpu_rate / base_cpu_rate, 3),
                     'cosine_mean': round(float(cos.mean()), 6),
                     'cosine_min': round(float(cos.min()), 6)})

    if args.mono_en:
        mono = mono_en_map(args.collection, args.data_dir, plain, passage_prefix, encoders, args.batch_size)
        for row in rows:
            row['mono_en_map'] = mono.get(row['variant'])

    result = {
        'benchmark': 'encode throughput, ours vs plain SentenceTransformer.encode fp32 (same texts, one run)',
        'encoder': args.encoder, 'note': 'me5-small-offline = dequantised 4-bit weights, not the original checkpoint',
        'texts': len(texts), 'collection': args.collection, 'per_lang': args.per_lang, 'rounds': args.rounds,
        'batch_size': args.batch_size, 'torch_threads': torch.get_num_threads(), 'torch': torch.__version__,
        'bf16_native': native_bf16(), 'machine': describe(), 'loadavg_before': [round(x, 2) for x in load_before],
        'loadavg_after': [round(x, 2) for x in os.getloadavg()],
        'int8_layers': len(encoders['int8'].int8_layers) if 'int8' in encoders else None,
        'results': rows,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out.with_suffix('.json')) as fh:
        json.dump(result, fh, indent=2)
        fh.write('\n')
    with atomic_write(out.with_suffix('.md')) as fh:
        fh.write(render(result))
    print(render(result))
    return 0


def mono_en_map(collection: str, data_dir: str | None, plain, passage_prefix: str, encoders: dict,
                batch_size: int) -> dict[str, float]:
    """Mono-en mAP (full pool) of the baseline and of each precision, from ``pyserini_hybrid.eval``."""
    from pyserini_hybrid.datasets import load_pool
    from pyserini_hybrid.eval import exact_scores

    pool = load_pool(collection, data_dir=data_dir)
    dataset_id = f'lareqa/{collection}/en'
    q_idx = pool.query_indices(dataset_id)
    d_idx = pool.doc_indices(dataset_id)
    queries = [pool.queries[i].text for i in q_idx]
    docs = [pool.docs[i].text for i in d_idx]
    any_encoder = next(iter(encoders.values()))
    query_prefix = any_encoder.query_prefix

    def score(q_vec: np.ndarray, d_vec: np.ndarray) -> float:
        # Vectors of other languages stay zero: the Mono-en setting never looks at them.
        q_all = np.zeros((len(pool.queries), q_vec.shape[1]), dtype=np.float32)
        d_all = np.zeros((len(pool.docs), d_vec.shape[1]), dtype=np.float32)
        q_all[q_idx], d_all[d_idx] = q_vec, d_vec
        result = exact_scores(pool, q_all, d_all, [dataset_id], similarity='ip')[dataset_id]
        return round(float(np.mean(list(result.per_query['AP'].values()))), 4)

    out = {BASELINE: score(
        plain.encode([query_prefix + t.strip() for t in queries], batch_size=batch_size, convert_to_numpy=True),
        plain.encode([passage_prefix + t.strip() for t in docs], batch_size=batch_size, convert_to_numpy=True))}
    for precision, encoder in encoders.items():
        out[f'ours-{precision}'] = score(encoder.encode_queries(queries), encoder.encode_passages(docs))
    return out


def render(result: dict) -> str:
    mono = any('mono_en_map' in row for row in result['results'])
    lines = [f"# Encode throughput: {result['encoder']} ({result['note']})", '',
             f"{result['texts']} XQuAD-R texts (all languages, candidates + questions), batch {result['batch_size']}, "
             f"{result['torch_threads']} torch threads, {result['rounds']} interleaved rounds; "
             f"load average {result['loadavg_before'][0]} -> {result['loadavg_after'][0]}.", '',
             machine_line(result['machine']), '',
             '| variant | texts/s (wall) | speed-up vs st-fp32 | texts per CPU-second | speed-up (CPU time) | '
             'cosine to st-fp32 (mean / min) |' + (' Mono-en mAP |' if mono else ''),
             '|---|---|---|---|---|---|' + ('---|' if mono else '')]
    for row in result['results']:
        line = (f"| {row['variant']} | {row['texts_per_s']:.1f} | {row['speedup']:.2f}x | {row['texts_per_cpu_s']:.1f} | "
                f"{row['cpu_speedup']:.2f}x | {row['cosine_mean']:.5f} / {row['cosine_min']:.5f} |")
        if mono:
            line += f" {row.get('mono_en_map', '')} |"
        lines.append(line)
    lines += ['', 'Wall time is what a user waits; CPU time (all threads of the process) is less sensitive to other '
              'processes on a busy machine, and with `--threads 1` it measures the work itself.',
              '', 'st-fp32: plain `SentenceTransformer.encode` (fp32, char-length sorting). ours-*: '
              '`pyserini_hybrid.encoders.Encoder` (token-length sorting; int8 = smoothed dynamic int8 Linears, '
              f"{result['int8_layers']} of them, FFN down-projections kept fp32; bf16 = autocast).", '']
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
