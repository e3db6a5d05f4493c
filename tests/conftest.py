"""Shared test fixtures: the real data in ../shared and the offline model."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
LAREQA_DIR = SHARED / 'data' / 'lareqa'
TRAIN_DIR = SHARED / 'data' / 'train'
FIXTURES = Path(__file__).resolve().parent / 'fixtures'

# Tests read XQuAD-R from ../shared, never from the network.
os.environ.setdefault('PYSERINI_HYBRID_DATA', str(LAREQA_DIR))


@pytest.fixture(scope='session')
def lareqa_dir() -> Path:
    if not (LAREQA_DIR / 'xquad-r' / 'en.json').is_file():
        pytest.fail(f"real XQuAD-R data expected at {LAREQA_DIR}/xquad-r (../shared/data/lareqa)")
    return LAREQA_DIR


@pytest.fixture(scope='session')
def train_dir() -> Path:
    if not TRAIN_DIR.is_dir():
        pytest.fail(f"training corpora expected at {TRAIN_DIR} (../shared/data/train)")
    return TRAIN_DIR


@pytest.fixture(scope='session')
def fixtures_dir() -> Path:
    return FIXTURES
