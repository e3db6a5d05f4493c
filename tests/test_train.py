"""Training: corpus adapters, recipes, zero-shot hygiene, a 20-step smoke training and exact resume.

Expected values come from the data README / issue (counts), from a second reading of the files in the
test itself, or from the hand-written fixtures in tests/fixtures/train (see its README). Training
uses a tiny BERT built here (char vocabulary from the fixture texts) so it runs in seconds on CPU.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first, as everywhere)
from pyserini_hybrid.datasets import is_validation_document
from pyserini_hybrid.train import (ALL_LANGUAGES, TRAIN_LANGUAGES, PairTable, RecipeError, TrainDataError,
                                   ZeroShotLeakError, check_zero_shot, checkpoint_dir, drop_overlapping, eval_index,
                                   find_overlaps, last_checkpoint, load_recipe, load_source, normalize_text,
                                   parse_recipe)
from pyserini_hybrid.train._data import answer_sentence, split_sentences

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def fixture_train_dir(fixtures_dir) -> Path:
    return fixtures_dir / 'train'


@pytest.fixture(scope='module')
def index(lareqa_dir):
    return eval_index(['xquad-r'])


# ------------------------------------------------------------------------------------------ adapters


def test_xnli_fixture_entailment_items_with_test_labels_from_xglue(fixture_train_dir):
    table = load_source('xnli', fixture_train_dir, TRAIN_LANGUAGES)
    # 20 dev entailment items + 2 test items labelled entailment in xglue-de/xnli-test.tsv; el excluded
    assert len(table) == 22 and table.langs == ('de', 'en', 'es')
    en = table.langs.index('en')
    assert 'A cat is asleep.' in table.queries[:, en]
    assert 'The cat is running in the garden.' not in table.queries[:, en]      # a contradiction
    assert 'The beach is close to the hotel.' in table.queries[:, en]            # test line 4: entailment
    assert 'The baby cried.' not in table.queries[:, en]                         # test line 2: contradiction
    i = list(table.queries[:, en]).index('A cat is asleep.')
    assert table.positives[i, table.langs.index('de')] == 'Die Katze schläft auf dem warmen Sofa.'
    assert len(table.mono_items('en')) == 22 and len(table.cross_items()) == 22
    with_greek = load_source('xnli', fixture_train_dir, ALL_LANGUAGES, splits=['dev'])
    assert with_greek.langs == ('de', 'el', 'en', 'es') and len(with_greek) == 20


def test_ntrex_fixture_modes(fixture_train_dir):
    nxt = load_source('ntrex', fixture_train_dir, TRAIN_LANGUAGES, validation_holdout=False)
    # documents of 4, 3 and 3 sentences: 3 + 2 + 2 next-sentence pairs
    assert len(nxt) == 7 and not nxt.same_text
    # by default the validation documents (here d2, 3 sentences) are left out
    held = load_source('ntrex', fixture_train_dir, TRAIN_LANGUAGES)
    assert len(held) == 5 and is_validation_document('d2') and not is_validation_document('d1')
    en = nxt.langs.index('en')
    pairs = set(zip(nxt.queries[:, en], nxt.positives[:, en]))
    assert ('Nobody was injured.', 'The local team signed a new coach.') not in pairs   # crosses documents
    assert ('Several trees fell onto the main road.', 'Nobody was injured.') in pairs
    tr = load_source('ntrex', fixture_train_dir, TRAIN_LANGUAGES, mode='translation', validation_holdout=False)
    assert len(tr) == 10 and tr.same_text and all(len(tr.mono_items(l)) == 0 for l in tr.langs)
    with pytest.raises(TrainDataError, match='unknown mode'):
        load_source('ntrex', fixture_train_dir, TRAIN_LANGUAGES, mode='paragraph')


def test_wikiqa_fixture_hard_negatives(fixture_train_dir):
    table = load_source('wikiqa', fixture_train_dir, TRAIN_LANGUAGES)
    # questions with an answer and a same-page negative: bees, peru (7-column row), titanic, everest, pandas
    assert len(table) == 5 and table.negatives is not None
    rows = {q: (p, n) for q, p, n in zip(table.queries[:, 0], table.positives[:, 0], table.negatives[:, 0])}
    assert rows['what is the capital of peru'] == ('Lima is the capital and largest city of Peru.',
                                                   'Peru is a country in South America.')
    assert rows['how do bees make honey'][1] in ('Bees live in colonies.', 'Honey has been eaten for thousands of years.')
    assert len(load_source('wikiqa', fixture_train_dir, TRAIN_LANGUAGES, hard_negatives=False)) == 6


def test_squad_answer_sentences(fixture_train_dir):
    table = load_source('tydiqa', fixture_train_dir, TRAIN_LANGUAGES)
    got = dict(zip(table.queries[:, 0], table.positives[:, 0]))
    assert got == {'Where is the Amazon rainforest?': 'It covers much of northwestern Brazil.',
                   'How many trees are in the Amazon?': 'Scientists estimate it holds 390 billion trees.',
                   'What kind of mountain is Kilimanjaro?': 'Mount Kilimanjaro is a dormant volcano in Tanzania.',
                   'How high is Kilimanjaro?': 'Its highest peak is about 5,895 metres above sea level.'}
    text = '第一句话。第二句话很长一些！Third one here. 最后'
    assert [text[s:e] for s, e in split_sentences(text, 'zh', min_chars=1)] == [
        '第一句话。', '第二句话很长一些！', 'Third one here. ', '最后']
    context = 'This first sentence is long enough. The answer spans two sentences here. They end right here, yes indeed.'
    start = context.index('answer')
    assert answer_sentence(context, start, context.index('They') + 3, 'en') == \
        'The answer spans two sentences here. They end right here, yes indeed.'
    assert answer_sentence(context, start, start + 6, 'en') == 'The answer spans two sentences here.'
    assert answer_sentence(context, len(context) + 5, len(context) + 9, 'en') is None
    # fragments shorter than min_chars join their neighbour ('Short.' is not a sentence of its own)
    assert [t[s:e] for t in ['Short. This is a full sentence.'] for s, e in split_sentences(t, 'en')] == [
        'Short. This is a full sentence.']


def test_real_corpora_sizes(train_dir):
    # README: 830 dev + 1,670 test entailment pairs per language; 9 training languages
    xnli = load_source('xnli', train_dir, TRAIN_LANGUAGES)
    assert len(xnli) == 2500 and xnli.langs == TRAIN_LANGUAGES
    # Tatoeba: one item per line pair of each X-eng file (counted here), el and vi excluded
    expected = 0
    for code in ('ara', 'cmn', 'deu', 'hin', 'rus', 'spa', 'tha', 'tur'):
        xs = (train_dir / 'tatoeba' / f'tatoeba.{code}-eng.{code}').read_bytes().decode().split('\n')
        ens = (train_dir / 'tatoeba' / f'tatoeba.{code}-eng.eng').read_bytes().decode().split('\n')
        expected += len({(x, e) for x, e in zip(xs, ens) if x.strip() and e.strip()})
    tatoeba = load_source('tatoeba', train_dir, TRAIN_LANGUAGES)
    assert len(tatoeba) == expected and tatoeba.same_text and len(tatoeba.cross_items()) == expected
    # NTREX next-sentence pairs: consecutive lines of one document (counted here)
    docs = (train_dir / 'ntrex' / 'DOCUMENT_IDS.tsv').read_text().split('\n')[:1997]
    ntrex = load_source('ntrex', train_dir, TRAIN_LANGUAGES, validation_holdout=False)
    assert len(ntrex) <= sum(a == b for a, b in zip(docs, docs[1:])) and len(ntrex) > 1800
    # the validation quarter of the documents is held out by default
    kept = sum(a == b and not is_validation_document(a) for a, b in zip(docs, docs[1:]))
    assert len(load_source('ntrex', train_dir, TRAIN_LANGUAGES)) <= kept < 0.8 * len(ntrex)
    # iapp, read from its zip: Thai only, each positive holds its answer text
    iapp = load_source('iapp', train_dir, ALL_LANGUAGES)
    assert iapp.langs == ('th',) and 7000 < len(iapp) <= 7242
    with zipfile.ZipFile(train_dir / 'iapp' / 'data.zip') as zf:
        records = [json.loads(l) for l in zf.read('data/train.jsonl').decode().splitlines()[:200]]
    answers = {r['question'].strip(): r['answers']['text'][0] for r in records}
    got = dict(zip(iapp.queries[:, 0], iapp.positives[:, 0]))
    checked = [q for q in answers if q in got]
    assert len(checked) > 150 and all(answers[q] in got[q] for q in checked)
    assert load_source('zalo', train_dir, TRAIN_LANGUAGES).langs == ()  # Vietnamese only: excluded by default


def test_bad_corpus_files_name_the_file_and_line(tmp_path):
    (tmp_path / 'xnli').mkdir()
    (tmp_path / 'xnli' / 'dev-en.tsv').write_text('premise\thypothesis\tentailment\nonly one field\n')
    with pytest.raises(TrainDataError, match=r'dev-en\.tsv:2: expected 3 tab-separated fields'):
        load_source('xnli', tmp_path, ('en',), splits=['dev'])
    (tmp_path / 'tydiqa').mkdir()
    (tmp_path / 'tydiqa' / 'tydiqa.goldp.en.train.json').write_text('{"data": [\n{"paragraphs": ]}')
    with pytest.raises(TrainDataError, match=r'tydiqa\.goldp\.en\.train\.json:2: invalid JSON'):
        load_source('tydiqa', tmp_path, ('en',))
    (tmp_path / 'wikiqa').mkdir()
    (tmp_path / 'wikiqa' / 'WikiQA-train.tsv').write_bytes(b'QuestionID\tQuestion\tSentenceID\tSentence\tLabel\n\xff\n')
    with pytest.raises(TrainDataError, match=r'WikiQA-train\.tsv: not valid UTF-8'):
        load_source('wikiqa', tmp_path, ('en',), splits=['train'])
    with pytest.raises(TrainDataError, match=r'missing training file .*pawsx.*dev-en\.tsv'):
        load_source('pawsx', tmp_path, ('en',))
    with pytest.raises(TrainDataError, match='unknown training corpus'):
        load_source('squad', tmp_path, ('en',))


# ------------------------------------------------------------------------------------------- recipes


def test_shipped_recipes_differ_only_in_name_and_strategy():
    recipes = {s: load_recipe(REPO / 'encoders' / f'me5-small-{s}.yaml') for s in ('mono', 'cross', 'hybrid')}
    for strategy, recipe in recipes.items():
        assert recipe.strategy == strategy and recipe.name == f'me5-small-{strategy}'
        assert recipe.base == 'me5-small-offline' and recipe.alpha == 0.5
        assert not set(recipe.languages) & {'el', 'vi'}
        same = {k: v for k, v in recipe.to_dict().items() if k not in ('name', 'strategy')}
        assert same == {k: v for k, v in recipes['hybrid'].to_dict().items() if k not in ('name', 'strategy')}


def test_ablation_recipes_change_only_what_they_ablate():
    hybrid = load_recipe(REPO / 'encoders' / 'me5-small-hybrid.yaml').to_dict()
    long = load_recipe(REPO / 'encoders' / 'me5-small-hybrid-long.yaml').to_dict()
    distill = load_recipe(REPO / 'encoders' / 'me5-small-hybrid-distill.yaml').to_dict()
    assert {k for k in hybrid if hybrid[k] != long[k]} == {'name', 'max_steps', 'save_steps', 'validation'}
    assert long['max_steps'] > hybrid['max_steps']
    assert {k for k in hybrid if hybrid[k] != distill[k]} == {'name', 'data'}
    extra = [e for e in distill['data'] if e not in hybrid['data']]
    assert [e['objective'] for e in extra] == ['distill'] and len(distill['data']) == len(hybrid['data']) + 1


@pytest.mark.parametrize('text, message', [
    ('name: x\ndata: [xnli]\nlrr: 0.1\n', r"r\.yaml:3: unknown key 'lrr'"),
    ('name: x\ndata: [xnli]\nvalidation:\n  patiense: 2\n', r"r\.yaml:4: unknown key 'validation\.patiense'"),
    ('name: x\ndata:\n  - corpus: xnli\n    split: [dev]\n', r"r\.yaml:4: unknown key 'data\[0\]\.split' for corpus 'xnli'"),
    ('name: x\ndata: [xnli]\nlr: 3e-5\n', r"r\.yaml:3: 'lr' must be a number, got str '3e-5'"),
    ('name: x\ndata: [xnli]\nmax_steps: 10.5\n', r"r\.yaml:3: 'max_steps' must be an integer, got float"),
    ('name: x\ndata: [xnli]\nprecision: fp16\n', r"r\.yaml:3: 'precision' must be one of auto, fp32, bf16, got 'fp16'"),
    ('name: x\ndata: [xnli]\nfreeze_embeddings: yes please\n', r"r\.yaml:3: 'freeze_embeddings' must be true or false"),
    ('name: x\ndata: [xnli]\nlanguages: en\n', r"r\.yaml:3: 'languages' must be a list"),
    ('name: x\ndata:\n  - corpus: ntrex\n    mode: 2\n', r"r\.yaml:4: 'data\[0\]\.mode' must be a string"),
    ('name: x\ndata: [squad]\n', r"r\.yaml:2: unknown corpus 'squad'"),
    ('name: x\ndata: [xnli]\nstrategy: both\n', r"r\.yaml:3: 'strategy' must be one of mono, cross, hybrid"),
    ('name: x\ndata: [xnli]\nalpha: 1.5\n', r"r\.yaml:3: 'alpha' must be between 0 and 1"),
    ('name: x\ndata: [xnli]\nlanguages: [en, xx]\n', r"r\.yaml:3: 'languages' must be codes among"),
    ('name: x\nname: y\ndata: [xnli]\n', r"r\.yaml:2: duplicate key 'name'"),
    ('data: [xnli]\n', r"r\.yaml:1: missing key 'name'"),
    ('name: x\ndata: [xnli, xnli]\n', r"two data entries are named 'xnli'"),
    ('name: [x\n', r"r\.yaml:2: invalid YAML"),
    ('name: x\ndata:\n  - xnli\n  - corpus: tatoeba\n    share: 1.5\n',
     r"r\.yaml:5: 'data\[1\]\.share' must be in \(0, 1\), got 1\.5"),
    ('name: x\ndata:\n  - xnli\n  - corpus: tatoeba\n    share: 0\n',
     r"r\.yaml:5: 'data\[1\]\.share' must be in \(0, 1\), got 0\.0"),
    ('name: x\ndata:\n  - xnli\n  - corpus: tatoeba\n    share: a lot\n',
     r"r\.yaml:5: 'data\[1\]\.share' must be a number, got str 'a lot'"),
    ('name: x\ndata:\n  - corpus: xnli\n    share: 0.6\n  - corpus: tatoeba\n    share: 0.5\n  - pawsx\n',
     r"r\.yaml:2: the 'share' values of 'data' sum to 1\.1: they must sum to less than 1"),
    ('name: x\ndata:\n  - corpus: xnli\n    share: 0.5\n',
     r"r\.yaml:2: every data entry has a 'share': leave one without, to take the other 0\.5 of the batches"),
])
def test_bad_recipes_are_one_line_errors_naming_file_line_and_key(tmp_path, text, message):
    path = tmp_path / 'r.yaml'
    path.write_text(text)
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(path)
    assert '\n' not in str(info.value)


def test_cli_reports_a_bad_recipe_in_one_line(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('name: x\ndata: [xnli]\nbatch_sise: 8\n')
    proc = subprocess.run([sys.executable, '-m', 'pyserini_hybrid.train', '--recipe', str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {path}:3: unknown key 'batch_sise' (valid keys: " + ', '.join(sorted(
        ['alpha', 'base', 'batch_size', 'data', 'freeze_embeddings', 'hard_negatives', 'languages', 'logging_steps',
         'loss', 'lr', 'max_length', 'max_steps', 'mini_batch_size', 'name', 'output', 'precision', 'query_instruction',
         'save_steps', 'scale', 'seed', 'strategy', 'validation', 'warmup', 'weight_decay'])) + ')'


def test_share_round_trips_and_an_unset_share_is_not_recorded():
    recipe = parse_recipe('name: x\ndata:\n  - xnli\n  - corpus: tatoeba\n    share: 0.25\n')
    assert [e.share for e in recipe.data] == [None, 0.25]
    # an unset share is left out of the snapshot, which checkpoints and experiment markers compare
    assert recipe.to_dict()['data'] == [
        {'corpus': 'xnli', 'name': None, 'weight': 1.0, 'task': None, 'drop_eval_overlap': False, 'options': {}},
        {'corpus': 'tatoeba', 'name': None, 'weight': 1.0, 'share': 0.25, 'task': None, 'drop_eval_overlap': False,
         'options': {}}]
    from pyserini_hybrid.train._trainer import _shares
    assert _shares(recipe) == {'tatoeba': 0.25} and _shares(recipe, {'xnli'}) == {}


def test_overrides_are_validated():
    recipe = parse_recipe('name: x\ndata: [xnli]\n')
    assert recipe.with_overrides(alpha=0.25, max_steps=None).alpha == 0.25
    with pytest.raises(RecipeError, match="command line: 'alpha' must be between 0 and 1"):
        recipe.with_overrides(alpha=2.0)
    with pytest.raises(RecipeError, match="'batch_size' must be >= 2"):
        recipe.with_overrides(batch_size=1)


# ------------------------------------------------------------------------------------------ hygiene


def _xquad(lareqa_dir, lang):
    data = json.loads((lareqa_dir / 'xquad-r' / f'{lang}.json').read_text(encoding='utf-8'))
    paragraph = data['data'][3]['paragraphs'][1]
    return paragraph['qas'][0]['question'], paragraph['sentences'][1], paragraph['context']


def _table(texts, lang='en'):
    q = np.array([[t] for t in texts], dtype=object)
    p = np.array([[f'unrelated passage number {i} about nothing at all' for i in range(len(texts))]],
                 dtype=object).T
    return PairTable('probe', (lang,), q, p)


def test_hygiene_refuses_evaluation_questions_sentences_and_contexts(lareqa_dir, index, train_dir):
    question, sentence, context = _xquad(lareqa_dir, 'en')
    clean = _table(['What is the capital of a country far away?'])
    assert check_zero_shot([clean], index) > 0
    # case and spacing do not hide a question
    with pytest.raises(ZeroShotLeakError, match=r'refusing to train: 1 training text\(s\) from probe'):
        check_zero_shot([_table(['  ' + question.upper().replace(' ', '   ') + ' '])], index)
    # nor a sentence inside a longer passage, nor a whole context, in any language
    q_de, s_de, c_de = _xquad(lareqa_dir, 'de')
    for leak, lang in ((f'Some preamble that is not evaluation text. {sentence} And an ending sentence here.', 'en'),
                       (context, 'en'), (s_de, 'de'), (q_de, 'de')):
        overlaps = find_overlaps([_table([leak], lang)], index)
        assert len(overlaps) == 1 and overlaps[0].where.startswith('xquad-r'), leak
    # the real WikiQA holds a passage of XQuAD-R (README): dropping it makes the check pass
    wikiqa = load_source('wikiqa', train_dir, TRAIN_LANGUAGES)
    assert find_overlaps([wikiqa], index)
    kept, dropped = drop_overlapping(wikiqa, index)
    assert dropped >= 1 and len(kept) == len(wikiqa) - dropped and not find_overlaps([kept], index)


def test_hygiene_index_covers_every_xquad_language(index, lareqa_dir):
    for lang in ALL_LANGUAGES:
        question, sentence, _ = _xquad(lareqa_dir, lang)
        assert normalize_text(question) in index and normalize_text(sentence) in index


# ------------------------------------------------------------------------------------------- training


def make_tiny_model(path: Path, texts: list[str], hidden: int = 32) -> Path:
    """A 2-layer BERT (char vocabulary) saved as a sentence-transformers dir with our spec (E5 prefixes)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from pyserini_hybrid.encoders import ModelSpec, save_spec

    chars = sorted(set(''.join(texts).lower()) - set(' \t\n'))
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + chars + ['##' + c for c in chars]
    # transformers 5 ignores vocab_file=: pass the vocabulary itself
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, strip_accents=False)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=256)
    hf = path.with_name(path.name + '-hf')
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    modules = [Transformer(str(hf), max_seq_length=128), Pooling(hidden, pooling_mode='mean'), Normalize()]
    SentenceTransformer(modules=modules, device='cpu').save(str(path), create_model_card=False)
    save_spec(path, ModelSpec(name=str(path), model=str(path), pooling='mean', normalize=True,
                              query_prefix='query: ', passage_prefix='passage: ', max_length=128))
    return path


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory, fixture_train_dir):
    import torch

    texts = [p.read_text(encoding='utf-8') for p in fixture_train_dir.rglob('*') if p.is_file()]
    path = make_tiny_model(tmp_path_factory.mktemp('models') / 'tiny', texts + ['query: passage: '])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster than two contending ones
    yield path
    torch.set_num_threads(threads)


RECIPE = """
name: smoke
base: {base}
strategy: hybrid
alpha: 0.5
languages: [de, en, es]
data:
  - corpus: xnli
  - corpus: ntrex
  - corpus: tatoeba
  - corpus: wikiqa
  - corpus: tydiqa
max_steps: {steps}
batch_size: 4
lr: 2.0e-3
warmup: 0.0
save_steps: 4
logging_steps: 2
freeze_embeddings: false
validation:
  fraction: 0.2
  max_items: 8
  batches: 2
  eval_steps: 4
"""


def _pair_loss(encoder, pairs) -> float:
    """In-batch InfoNCE (scale 20) of (query, positive) pairs, computed from the encoder's vectors."""
    q = encoder.encode_queries([a for a, _ in pairs])
    p = encoder.encode_passages([b for _, b in pairs])
    logits = 20.0 * q @ p.T
    logits -= logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits).sum(1)) - np.diag(logits)))


@pytest.mark.slow
def test_smoke_training_through_the_cli(tmp_path, tiny_model, fixture_train_dir, index, monkeypatch):
    from safetensors.torch import load_file

    from pyserini_hybrid.encoders import Encoder, get_spec
    from pyserini_hybrid.train import __main__ as cli
    from pyserini_hybrid.train import _hygiene

    monkeypatch.setattr(_hygiene, 'eval_index', lambda collections=None: index)  # built once per module
    recipe = tmp_path / 'smoke.yaml'
    recipe.write_text(RECIPE.format(base=tiny_model, steps=10))
    out = tmp_path / 'model'
    xnli = load_source('xnli', fixture_train_dir, ('de', 'en', 'es'))
    pairs = [(xnli.queries[i, 1], xnli.positives[i, 0]) for i in range(12)]   # en query -> de positive
    before = Encoder(str(tiny_model), precision='fp32')
    loss_before = _pair_loss(before, pairs)

    cli.main(['--recipe', str(recipe), '--max-steps', '20', '--output', str(out), '--train-dir',
              str(fixture_train_dir), '--device', 'cpu', '--quiet'])

    assert not checkpoint_dir(out).exists()             # removed after success
    info = json.loads((out / 'training.json').read_text())
    assert info['steps'] == 20 and info['strategy'] == 'hybrid' and info['alpha'] == 0.5
    assert info['recipe']['max_steps'] == 20 and info['seed'] == 42
    assert set(info['sources']) == {'xnli', 'ntrex', 'tatoeba', 'wikiqa', 'tydiqa'}
    assert info['sources']['wikiqa']['negatives'] and info['sources']['tatoeba']['same_text']
    assert any('eval_loss' in e for e in info['log_history'])       # validation on held-out training items
    card = (out / 'README.md').read_text()
    # the recipe's default precision (auto) is recorded as it resolved for training on this CPU
    from pyserini_hybrid.encoders import resolve_precision

    resolved = resolve_precision('auto', 'cpu', for_training=True)
    assert info['recipe']['precision'] == 'auto' and info['precision'] == resolved
    assert f'| precision | {resolved} (recipe: auto) |' in card
    for fact in (f'`{tiny_model}`', '| strategy | hybrid |', '| alpha (P(mono batch)) | 0.5 |', '| steps | 20 of 20 |',
                 '| seed | 42 |', '| code version | 0.', 'xnli'):
        assert fact in card, fact
    # the model directory describes itself: prefixes, pooling, the search-time max length
    spec = get_spec(str(out))
    assert (spec.query_prefix, spec.passage_prefix, spec.pooling, spec.normalize) == ('query: ', 'passage: ', 'mean', True)
    after = Encoder(str(out), precision='fp32')
    assert after.model.max_seq_length == 128
    old, new = load_file(tiny_model / 'model.safetensors'), load_file(out / 'model.safetensors')
    assert set(old) == set(new) and any(not np.allclose(old[k].numpy(), new[k].numpy()) for k in old)
    # it learned: the training pairs' in-batch loss went down
    assert _pair_loss(after, pairs) < loss_before


@pytest.mark.slow
def test_resume_gives_the_same_weights(tmp_path, tiny_model, fixture_train_dir, index):
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from pyserini_hybrid.train import TrainError, train

    class Crash(TrainerCallback):
        """Stops at step 6: checkpoint-4 exists, steps 5-6 are lost and must be replayed."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 6:
                control.should_training_stop = True

    recipe = parse_recipe(RECIPE.format(base=tiny_model, steps=12))
    kw = dict(train_dir=fixture_train_dir, device='cpu', progress=False, eval_index=index)
    full = train(recipe.with_overrides(output=str(tmp_path / 'full')), **kw)
    part = recipe.with_overrides(output=str(tmp_path / 'part'))
    stopped = train(part, callbacks=[Crash()], **kw)
    assert not stopped.completed and stopped.global_step == 6 and not (tmp_path / 'part').exists()
    ckpts = checkpoint_dir(tmp_path / 'part')
    assert last_checkpoint(ckpts).name == 'checkpoint-4'
    (ckpts / 'checkpoint-8').mkdir()                    # a checkpoint killed while being written
    (ckpts / 'checkpoint-8' / 'trainer_state.json').write_text('{"global_st')
    assert last_checkpoint(ckpts).name == 'checkpoint-4'
    with pytest.raises(TrainError, match='pass --resume'):
        train(part, **kw)
    with pytest.raises(TrainError, match=r'different recipe \(differs in: lr\)'):
        train(part.with_overrides(lr=1e-3), resume=True, **kw)
    resumed = train(part, resume=True, **kw)
    assert resumed.completed and resumed.global_step == 12
    a, b = load_file(tmp_path / 'full' / 'model.safetensors'), load_file(tmp_path / 'part' / 'model.safetensors')
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(TrainError, match='already exists'):
        train(part, **kw)


# ----------------------------------------------------------------------------- translation distillation


def test_distill_loss_is_two_minus_two_cosine_and_the_router_sends_labelled_batches_to_it():
    import torch

    from pyserini_hybrid.train._losses import PairsOrDistillLoss, TranslationDistillLoss

    class Fixed(torch.nn.Module):   # a "model" returning given unit vectors
        def __init__(self, vectors):
            super().__init__()
            self.vectors = vectors

        def forward(self, features):
            return {'sentence_embedding': self.vectors}

    student = torch.nn.functional.normalize(torch.tensor([[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]]), dim=-1)
    teacher = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.0, 4.0, 3.0]]), dim=-1)
    distill = TranslationDistillLoss(Fixed(student))
    cos = (student * teacher).sum(-1)
    assert torch.allclose(distill([{}], teacher), (2 - 2 * cos).mean())

    class Pairs(torch.nn.Module):
        def forward(self, features, labels):
            return torch.tensor(-1.0)

    router = PairsOrDistillLoss(Pairs(), distill)
    assert router([{}, {}], None).item() == -1.0                      # a pair batch (no labels)
    assert router([{}, {}], torch.zeros(2)).item() == -1.0            # 1-d labels: still a pair loss
    assert torch.allclose(router([{}], teacher), distill([{}], teacher))


def test_distill_objective_in_recipes(tmp_path):
    base = RECIPE.format(base='me5-small-offline', steps=4)
    entry = "  - corpus: ntrex\n    name: ntrex-distill\n    mode: translation\n    objective: distill\n    share: 0.3\n"
    recipe = parse_recipe(base.replace("  - corpus: wikiqa\n", entry + "  - corpus: wikiqa\n"))
    assert [e.objective for e in recipe.data].count('distill') == 1
    data = recipe.to_dict()['data']
    assert data[3]['objective'] == 'distill' and 'objective' not in data[0]   # the default is not recorded
    with pytest.raises(RecipeError, match=r"data\[3\].objective.*must be one of pairs, distill"):
        parse_recipe(base.replace("  - corpus: wikiqa\n", entry.replace('distill\n', 'mse\n') + "  - corpus: wikiqa\n"))
    with pytest.raises(RecipeError, match="needs English"):
        parse_recipe(base.replace('[de, en, es]', '[de, es]').replace("  - corpus: wikiqa\n", entry + "  - corpus: wikiqa\n"))


@pytest.mark.slow
def test_distill_source_pulls_translations_onto_the_base_english_vectors(tmp_path, tiny_model, fixture_train_dir,
                                                                         index):
    from pyserini_hybrid.encoders import Encoder
    from pyserini_hybrid.train import TrainError, train

    entry = "  - corpus: ntrex\n    name: ntrex-distill\n    mode: translation\n    objective: distill\n    share: 0.5\n"
    text = RECIPE.format(base=tiny_model, steps=12)
    plain = parse_recipe(text)
    distilled = parse_recipe(text.replace("  - corpus: wikiqa\n", entry + "  - corpus: wikiqa\n"))
    kw = dict(train_dir=fixture_train_dir, device='cpu', progress=False, eval_index=index)
    train(plain.with_overrides(output=str(tmp_path / 'plain')), **kw)
    log = tmp_path / 'batches.jsonl'
    result = train(distilled.with_overrides(output=str(tmp_path / 'distilled')), batch_log=log, **kw)
    assert result.completed and result.sources['ntrex-distill']['objective'] == 'distill'
    batches = [json.loads(line) for line in log.read_text().splitlines()]
    assert any('ntrex-distill' in b['sources'] for b in batches) and any('xnli' in b['sources'] for b in batches)
    assert not any(e.get('eval_loss') is None for e in result.log if 'eval_loss' in e)

    table = load_source('ntrex', fixture_train_dir, ('de', 'en', 'es'), mode='translation')
    en, others = table.langs.index('en'), [j for j, l in enumerate(table.langs) if l != 'en']
    teacher = Encoder(str(tiny_model), precision='fp32').encode_passages(list(table.positives[:, en]))

    def gap(model_dir) -> float:   # mean squared distance of each translation to its teacher vector
        enc = Encoder(str(model_dir), precision='fp32')
        return float(np.mean([((enc.encode_passages(list(table.positives[:, j])) - teacher) ** 2).sum(1).mean()
                              for j in others]))

    assert gap(tmp_path / 'distilled') < gap(tmp_path / 'plain')
    # distillation batches and a DDP gather cannot mix: refused before anything starts
    from pyserini_hybrid.train import _trainer

    run = _trainer._Run(output=tmp_path / 'x', ckpt_dir=tmp_path / 'x.ck', snapshot={}, resume_from=None,
                        batch_log=None, world_size=2, rank=0)
    with pytest.raises(TrainError, match="one process only"):
        _trainer._distill_sources(distilled, run)
