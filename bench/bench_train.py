"""Training throughput: our trainer (hybrid batch samplers over lazy pair datasets) vs a default
sentence-transformers trainer on the same pairs.

Both train the same base model with MultipleNegativesRankingLoss (scale 20), the same batch size
and max length, for a few steps. The baseline is the trainer with its defaults (fp32, every weight
trained); ours runs as the shipped recipes do (frozen word embeddings, bf16 autocast where the CPU
has native bfloat16), and once more at fp32 with frozen embeddings to separate the two gains; pairs/s is batch size x steps / step time
(model loading, data reading and the hygiene check excluded; the trainer's own per-step work
included), and pairs per CPU-second of the process (robust to other jobs on a shared machine; on an
idle 2-core machine wall pairs/s is at most 2x that). The default trainer reads a plain in-memory ``Dataset`` of the same (anchor, positive)
rows with sentence-transformers' default batch sampler.

    .venv/bin/python bench/bench_train.py                      # ~4-5 min on 2 cores
    .venv/bin/python bench/bench_train.py --steps 30 --base me5-small-offline

Writes ``bench/results/train-<cpu kind>.json`` and ``.md`` (committed: one table per CPU kind).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault('PYSERINI_HYBRID_DATA', str(REPO.parent / 'shared' / 'data' / 'lareqa'))

import pyserini_hybrid  # noqa: E402,F401  (Java set-up first, as everywhere)

sys.path.insert(0, str(REPO / 'bench'))
from _machine import describe, machine_line, tag  # noqa: E402  (bench/ is not a package)


def _recipe(args, output: Path, freeze: bool, precision: str = 'fp32'):
    from pyserini_hybrid.train import parse_recipe

    text = f"""
name: bench
base: {args.base}
strategy: hybrid
alpha: 0.5
data: [{', '.join(args.data.split(','))}]
max_steps: {args.steps}
batch_size: {args.batch_size}
max_length: {args.max_length}
freeze_embeddings: {'true' if freeze else 'false'}
precision: {precision}
logging_steps: 1000
save_steps: 100000
seed: 7
validation:
  fraction: 0.0
"""
    return parse_recipe(text, 'bench').with_overrides(output=str(output))


def run_ours(args, work: Path, freeze: bool, precision: str) -> dict:
    from pyserini_hybrid.train import train

    recipe = _recipe(args, work / f"ours-{'frozen' if freeze else 'full'}-{precision}", freeze, precision)
    t0 = time.perf_counter()
    result = train(recipe, progress=False, device='cpu', eval_index={})
    info = json.loads((recipe.output_dir / 'training.json').read_text())
    return {'pairs_per_second': result.pairs_per_second, 'pairs_per_cpu_second': info['pairs_per_cpu_second'],
            'steps': result.global_step, 'wall_seconds': time.perf_counter() - t0}


def run_default(args, work: Path) -> dict:
    """sentence-transformers' trainer with its defaults (fp32, all weights), on the rows our sampler draws."""
    import numpy as np
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from torch.utils.data import ConcatDataset

    from pyserini_hybrid.encoders import Encoder
    from pyserini_hybrid.train import HybridBatchSampler, PairBatchSampler
    from pyserini_hybrid.train._trainer import _throughput_callback, load_tables

    recipe = _recipe(args, work / 'default', False)
    tables, _ = load_tables(recipe)
    encoder = Encoder(recipe.base, precision='fp32', device='cpu')   # fp32 weights to train
    spec, model = encoder.spec, encoder.model
    model.max_seq_length = recipe.max_length
    datasets = [t.to_dataset(spec.query_prefix, spec.passage_prefix, with_negatives=False) for t in tables]
    subs = [PairBatchSampler(ds, recipe.batch_size, True, seed=recipe.seed) for ds in datasets]
    sampler = HybridBatchSampler(ConcatDataset(datasets), subs, seed=recipe.seed, alpha=0.5)
    rng = np.random.default_rng(recipe.seed)
    anchors, positives = [], []
    while len(anchors) < recipe.batch_size * (args.steps + 2):
        _, source, rows = sampler.next_batch(rng)
        texts = datasets[source][rows]
        anchors += texts['anchor']
        positives += texts['positive']
    flat = Dataset.from_dict({'anchor': anchors, 'positive': positives})
    throughput = _throughput_callback()
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(work / 'default-ckpt'), max_steps=args.steps, per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.lr, seed=recipe.seed, save_strategy='no', report_to='none', disable_tqdm=True,
        use_cpu=True, logging_steps=1000)
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=flat,
                                         loss=MultipleNegativesRankingLoss(model, scale=20.0), callbacks=[throughput])
    t0 = time.perf_counter()
    trainer.train()
    return {'pairs_per_second': throughput.steps * recipe.batch_size / throughput.seconds,
            'pairs_per_cpu_second': throughput.steps * recipe.batch_size / throughput.cpu_seconds,
            'steps': throughput.steps, 'wall_seconds': time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--base', default='me5-small-offline')
    parser.add_argument('--steps', type=int, default=15)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--max-length', type=int, default=64)
    parser.add_argument('--data', default='xnli,ntrex,tico,tydiqa,cmrc2018',
                        help='comma-separated corpora (text lengths matter: XNLI alone is short)')
    parser.add_argument('--output', default=str(REPO / 'bench' / 'results'))
    args = parser.parse_args()

    import torch

    from pyserini_hybrid._io import atomic_write
    from pyserini_hybrid.encoders._model import native_bf16

    precision = 'bf16' if native_bf16() else 'fp32'

    load_before = os.getloadavg()
    runs = {}
    with tempfile.TemporaryDirectory(prefix='bench_train.') as tmp:
        work = Path(tmp)
        runs['default sentence-transformers trainer (fp32, all weights trained)'] = run_default(args, work)
        runs[f'ours: recipe settings (frozen word embeddings, {precision})'] = run_ours(args, work, True, precision)
        if precision != 'fp32':
            runs['ours: frozen word embeddings, fp32'] = run_ours(args, work, True, 'fp32')
    names = list(runs)
    ratio = runs[names[1]]['pairs_per_second'] / runs[names[0]]['pairs_per_second']
    cpu_ratio = runs[names[1]]['pairs_per_cpu_second'] / runs[names[0]]['pairs_per_cpu_second']
    report = {
        'base': args.base, 'data': args.data.split(','), 'steps': args.steps, 'batch_size': args.batch_size, 'max_length': args.max_length,
        'runs': runs, 'ours_vs_default': ratio, 'ours_vs_default_cpu': cpu_ratio,
        'threads': torch.get_num_threads(), 'cpus': os.cpu_count(),
        'load_average_before': load_before, 'load_average_after': os.getloadavg(),
        'machine': describe(),
    }
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / f'train-{tag()}.json') as fh:
        json.dump(report, fh, indent=2)
    lines = [f"# Training throughput ({args.base}, batch {args.batch_size}, max length {args.max_length}, "
             f"{args.steps} steps, {torch.get_num_threads()} threads, data {args.data})", '',
             '| trainer | pairs/s (wall) | pairs per CPU-second | steps | wall s |', '|---|---|---|---|---|']
    for name, r in runs.items():
        lines.append(f"| {name} | {r['pairs_per_second']:.2f} | {r['pairs_per_cpu_second']:.2f} | {r['steps']} | "
                     f"{r['wall_seconds']:.0f} |")
    lines += ['', f"ours / default: {ratio:.2f}x (wall), {cpu_ratio:.2f}x (CPU time). Load average before/after: "
              f"{', '.join(f'{x:.1f}' for x in load_before)} / {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              "(other jobs on the machine slow every run alike).", '', machine_line(report['machine']), '']
    with atomic_write(out / f'train-{tag()}.md') as fh:
        fh.write('\n'.join(lines))
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
