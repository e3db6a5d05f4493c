"""Shared test fixtures: the real data in ../shared, the offline model, a tiny instruction model."""
from __future__ import annotations

import json
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


@pytest.fixture()
def tiny_xquad(fixtures_dir, monkeypatch):
    """The hand-made XQuAD-R fixture (all 11 languages, a few sentences each) as the data source."""
    from pyserini_hybrid.datasets import clear_cache, load_pool

    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    clear_cache()
    yield load_pool('xquad-r')
    clear_cache()


@pytest.fixture(scope='session')
def instruction_model(tmp_path_factory) -> Path:
    """A tiny sentence-transformers model whose spec has the E5-instruct template: it needs a task.

    Random weights (1 layer, 32 dimensions) over a WordPiece vocabulary learnt from the hand-made
    LAReQA fixture and the task texts, so that different tasks give different query vectors.
    """
    import json

    from pyserini_hybrid.encoders import ModelSpec
    from pyserini_hybrid.train._instructions import INSTRUCT_TEMPLATE, TASK_INSTRUCTIONS

    texts = [INSTRUCT_TEMPLATE, *TASK_INSTRUCTIONS.values()]
    for path in sorted((FIXTURES / 'lareqa').glob('*/*.json')):
        for article in json.loads(path.read_text(encoding='utf-8'))['data']:
            for paragraph in article['paragraphs']:
                texts += paragraph['sentences'] + [qa['question'] for qa in paragraph['qas']]
    spec = ModelSpec(name='tiny-instruct', model='tiny-instruct', passage_prefix='passage: ',
                     query_instruction=INSTRUCT_TEMPLATE, max_length=64)
    return build_tiny_bert(tmp_path_factory.mktemp('instruction_model'), texts, spec, vocab_size=500)


# A hybrid recipe over four of the hand-made corpora of tests/fixtures/train, for the tiny base below.
# NTREX is left out: its hold-out rules are test_train.py's concern.
TINY_TRAIN_RECIPE = """
name: {name}
base: {base}
strategy: hybrid
alpha: {alpha}
languages: [de, en, es]
data:
  - corpus: xnli
  - corpus: tatoeba{share}
  - corpus: wikiqa
  - corpus: tydiqa
max_steps: {steps}
batch_size: 4
lr: 1.0e-4
warmup: 0.0
save_steps: 1000
logging_steps: 1000
freeze_embeddings: true
validation:
  fraction: 0.0
"""


def read_batch_log(log: Path) -> list[dict]:
    """The entries of a ``--batch-log`` file (one JSON object per training step)."""
    return [json.loads(line) for line in log.read_text(encoding='utf-8').splitlines()]


def batch_kind(batch: dict) -> str:
    """'mono' (one language for every query and positive), 'cross' (every row two languages), else 'mixed'."""
    if len({lang for row in batch['rows'] for lang in row}) == 1:
        return 'mono'
    return 'cross' if all(q != p for q, p in batch['rows']) else 'mixed'


@pytest.fixture(scope='session')
def tiny_train_base(tmp_path_factory) -> Path:
    """conftest's tiny BERT with E5 prefixes, its vocabulary learnt from the training fixtures."""
    from pyserini_hybrid.encoders import ModelSpec

    texts = [p.read_text(encoding='utf-8') for p in sorted((FIXTURES / 'train').rglob('*')) if p.is_file()]
    spec = ModelSpec(name='tiny', model='tiny', query_prefix='query: ', passage_prefix='passage: ', max_length=64)
    return build_tiny_bert(tmp_path_factory.mktemp('tiny_train_base'), texts, spec, vocab_size=800)


def build_tiny_bert(out: Path, texts: list[str], spec, vocab_size: int = 3000) -> Path:
    """A 1-layer, 32-dimensional BERT (seeded random weights, mean pooling, L2 norm) with a WordPiece
    vocabulary learnt from ``texts``, saved as a sentence-transformers model with ``spec``; returns its path."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from pyserini_hybrid.encoders import save_spec

    wordpiece = BertWordPieceTokenizer(lowercase=True, strip_accents=False)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, show_progress=False)
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, model_max_length=64)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=66)
    BertModel(config).save_pretrained(out / 'hf')
    tokenizer.save_pretrained(out / 'hf')
    transformer = Transformer(str(out / 'hf'), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), 'mean'),
                                         Normalize()])
    model.save(str(out / 'model'))
    save_spec(out / 'model', spec)
    return out / 'model'
