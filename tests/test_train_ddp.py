"""DDP training through torchrun: 2 CPU processes (gloo) against a 1-process run of the same recipe.

``torchrun --nproc_per_node 2 -m pyserini_hybrid.train`` trains a tiny BERT (conftest's builder) on
the hand-made corpora of tests/fixtures/train, with ``--batch-log`` (one log per rank). Checked: both
ranks and the 1-process run take the same number of optimiser steps; the ranks train on different
batches, in the first epoch the 1-process run's batches (rank ``r`` takes batches ``r, r + 2,
...``); every batch of every rank is monolingual or cross-lingual, and each rank gets both kinds;
rank 0 alone wrote the model, which loads as a SentenceTransformer and as the project's encoder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first, as everywhere)
from conftest import TINY_TRAIN_RECIPE, batch_kind, read_batch_log
from pyserini_hybrid.train import checkpoint_dir

REPO = Path(__file__).resolve().parents[1]
SAMPLER = 'pyserini_hybrid.train._samplers.HybridBatchSampler'
STEPS = 6


def _run(launcher: list[str], recipe: Path, out: Path, log: Path, train_dir: Path) -> None:
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]),
           'OMP_NUM_THREADS': '1'}   # 2 processes on 2 cores: one thread each
    proc = subprocess.run([*launcher, 'pyserini_hybrid.train', '--recipe', str(recipe), '--output', str(out),
                           '--train-dir', str(train_dir), '--device', 'cpu', '--quiet', '--batch-log', str(log)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_process_torchrun_matches_one_process(tmp_path, tiny_train_base, fixtures_dir):
    from sentence_transformers import SentenceTransformer

    from pyserini_hybrid.encoders import Encoder

    train_dir = fixtures_dir / 'train'
    recipe = tmp_path / 'ddp.yaml'
    recipe.write_text(TINY_TRAIN_RECIPE.format(name='ddp', base=tiny_train_base, alpha=0.5, steps=STEPS, share=''),
                      encoding='utf-8')
    single_out, ddp_out = tmp_path / 'single', tmp_path / 'ddp'
    _run([sys.executable, '-m'], recipe, single_out, tmp_path / 'single.jsonl', train_dir)
    _run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m'],
         recipe, ddp_out, tmp_path / 'ddp.jsonl', train_dir)

    single = read_batch_log(tmp_path / 'single.jsonl')
    ranks = [read_batch_log(tmp_path / f'ddp.rank{r}.jsonl') for r in (0, 1)]
    assert not (tmp_path / 'ddp.jsonl').exists()
    # the same number of optimiser steps as the 1-process run, on every rank
    steps = [json.loads((out / 'training.json').read_text(encoding='utf-8'))['steps'] for out in (single_out, ddp_out)]
    assert steps == [STEPS, STEPS] and len(single) == STEPS
    assert json.loads((ddp_out / 'training.json').read_text(encoding='utf-8'))['world_size'] == 2
    for r, log in enumerate(ranks):
        assert [b['step'] for b in log] == list(range(1, STEPS + 1))
        assert {b['rank'] for b in log} == {r} and {b['sampler'] for b in log} == {SAMPLER}
    # different batches on the ranks; in the first epoch, the 1-process sequence with rank r taking
    # its batches r, r + 2, ... (the same seed draws the same batches)
    for step in range(STEPS):
        assert ranks[0][step]['indices'] != ranks[1][step]['indices']
    compared = 0
    for step in range(STEPS):
        for r in (0, 1):
            if ranks[r][step]['epoch'] == 0 and 2 * step + r < len(single) and single[2 * step + r]['epoch'] == 0:
                assert ranks[r][step]['indices'] == single[2 * step + r]['indices'], (r, step)
                compared += 1
    assert compared >= 4
    # the hybrid strategy on every rank: each batch mono or cross-lingual, and both kinds drawn
    kinds = [[batch_kind(b) for b in log] for log in ranks]
    assert all(k in ('mono', 'cross') for log in kinds for k in log), kinds
    assert all(set(log) == {'mono', 'cross'} for log in kinds), kinds
    # rank 0 wrote the model (atomically, no checkpoints left); it loads both ways
    assert not checkpoint_dir(ddp_out).exists() and not list(tmp_path.glob('.ddp*'))
    model = SentenceTransformer(str(ddp_out), device='cpu')
    vectors = model.encode(['query: Hallo Welt.', 'passage: Hello world.'])
    assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
    encoder = Encoder(str(ddp_out), precision='fp32')
    assert encoder.encode_queries(['Hallo Welt.']).shape == (1, 32)
