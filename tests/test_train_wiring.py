"""The trainer's wiring, checked through ``python -m pyserini_hybrid.train``: what it trained on.

``--batch-log`` writes one JSON line per training step (the step, the training sampler's class, the
batch's sources and each row's query / positive language; see ``pyserini_hybrid.train.BatchRecorder``).
These tests train a tiny BERT (conftest's builder) on the hand-made corpora of tests/fixtures/train
and check, from that log, that the recipe's strategy, alpha and ``data[].share`` are honoured and
that the project's batch sampler, not sentence-transformers' default, made the batches. Proportions
are checked with an exact binomial test (two-sided p above 1e-3): a correct sampler fails that with
probability 1e-3, and the seed is fixed, so the outcome is the same on every run.

A training run whose corpus holds XQuAD-R text is refused with one line and writes nothing.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from scipy.stats import binomtest

import pyserini_hybrid  # noqa: F401  (Java set-up first, as everywhere)
from conftest import TINY_TRAIN_RECIPE, batch_kind, read_batch_log
from pyserini_hybrid.train import checkpoint_dir

REPO = Path(__file__).resolve().parents[1]
SAMPLER = 'pyserini_hybrid.train._samplers.HybridBatchSampler'


@pytest.fixture(scope='module')
def fixture_train_dir(fixtures_dir) -> Path:
    return fixtures_dir / 'train'


def _train(tmp_path: Path, base: Path, train_dir: Path, *, alpha: float, steps: int, share: str = '',
           extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, Path, Path]:
    recipe = tmp_path / 'wiring.yaml'
    recipe.write_text(TINY_TRAIN_RECIPE.format(name='wiring', base=base, alpha=alpha, steps=steps, share=share),
                      encoding='utf-8')
    out, log = tmp_path / 'model', tmp_path / 'batches.jsonl'
    proc = subprocess.run([sys.executable, '-m', 'pyserini_hybrid.train', '--recipe', str(recipe), '--output',
                           str(out), '--train-dir', str(train_dir), '--device', 'cpu', '--quiet',
                           '--batch-log', str(log), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    return proc, out, log


def _within_binomial(k: int, n: int, p: float) -> bool:
    return binomtest(k, n, p).pvalue > 1e-3


@pytest.mark.slow
def test_hybrid_alpha_and_share_are_what_the_trainer_trained_on(tmp_path, tiny_train_base, fixture_train_dir):
    """alpha 0.6, Tatoeba with share 0.5: half the batches are Tatoeba's (cross-lingual only, a
    translation corpus has no mono rows); the other half are mono with probability 0.6."""
    steps, alpha, share = 120, 0.6, 0.5
    proc, out, log = _train(tmp_path, tiny_train_base, fixture_train_dir, alpha=alpha, steps=steps,
                            share=f'\n    share: {share}')
    assert proc.returncode == 0, proc.stderr
    batches = read_batch_log(log)
    assert [b['step'] for b in batches] == list(range(1, steps + 1))      # every step, each once
    assert {b['sampler'] for b in batches} == {SAMPLER}
    assert all(len(b['rows']) == 4 and len(b['sources']) == 1 for b in batches)   # one source per batch
    kinds = Counter(batch_kind(b) for b in batches)
    assert kinds['mixed'] == 0, kinds
    n_tatoeba = sum(b['sources'] == ['tatoeba'] for b in batches)
    assert _within_binomial(n_tatoeba, steps, share), n_tatoeba
    assert all(batch_kind(b) == 'cross' for b in batches if b['sources'] == ['tatoeba'])
    assert _within_binomial(kinds['mono'], steps, (1 - share) * alpha), kinds
    # mono batches: the language uniform over de, en, es
    mono_langs = Counter(b['rows'][0][0] for b in batches if batch_kind(b) == 'mono')
    assert set(mono_langs) == {'de', 'en', 'es'}
    for lang in ('de', 'en', 'es'):
        assert _within_binomial(mono_langs[lang], kinds['mono'], 1 / 3), mono_langs
    assert json.loads((out / 'training.json').read_text())['steps'] == steps


@pytest.mark.slow
@pytest.mark.parametrize('strategy', ['mono', 'cross'])
def test_pure_strategies_give_only_their_batch_kind(tmp_path, tiny_train_base, fixture_train_dir, strategy):
    steps = 40
    proc, out, log = _train(tmp_path, tiny_train_base, fixture_train_dir, alpha=0.5, steps=steps,
                            extra=('--strategy', strategy))
    assert proc.returncode == 0, proc.stderr
    batches = read_batch_log(log)
    assert len(batches) == steps and {b['sampler'] for b in batches} == {SAMPLER}
    assert Counter(batch_kind(b) for b in batches) == {strategy: steps}
    langs = {lang for b in batches for row in b['rows'] for lang in row}
    assert langs == {'de', 'en', 'es'}
    info = json.loads((out / 'training.json').read_text())
    assert info['strategy'] == strategy and info['alpha'] is None


def test_training_on_evaluation_text_is_refused_and_writes_nothing(tmp_path, tiny_train_base, fixture_train_dir,
                                                                   lareqa_dir):
    """A German-English Tatoeba pair whose German side is an XQuAD-R question: one line, status 2."""
    import shutil

    train_dir = tmp_path / 'train'
    shutil.copytree(fixture_train_dir, train_dir)
    data = json.loads((lareqa_dir / 'xquad-r' / 'de.json').read_text(encoding='utf-8'))
    question = data['data'][2]['paragraphs'][0]['qas'][0]['question']
    for name, text in (('deu', question), ('eng', 'A sentence that is nowhere in the evaluation data.')):
        path = train_dir / 'tatoeba' / f'tatoeba.deu-eng.{name}'
        path.write_text(path.read_text(encoding='utf-8') + text + '\n', encoding='utf-8')
    proc, out, log = _train(tmp_path, tiny_train_base, train_dir, alpha=0.5, steps=4)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    # the pair's German side counts as a query and as a positive text
    assert len(lines) == 1 and re.match(r"error: refusing to train: \d+ training text\(s\) from tatoeba .*"
                                        r"= xquad-r question \w+_de; drop them", lines[0]), proc.stderr
    assert not out.exists() and not checkpoint_dir(out).exists() and not log.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['train', 'wiring.yaml']
