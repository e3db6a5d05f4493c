"""Instruction data readers, conversion to retrieval pairs, the training adapter and task instructions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first, as everywhere)
from pyserini_hybrid.train._instructions import (
    DOLLY_HUB_ID, INSTRUCT_TEMPLATE, SEARCH_TASK, TASK_INSTRUCTIONS, InstructionDataError, instruct_query,
    instructions, load_instruction_pairs, read_dolly, read_instructions, read_self_instruct, read_t0, task_for,
    to_pairs)


@pytest.fixture(scope='module')
def dolly_file(fixtures_dir) -> Path:
    return fixtures_dir / 'instructions' / 'dolly_tiny.jsonl'


def _raw_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding='utf-8').splitlines()]


# -- Dolly format ---------------------------------------------------------------------------------

def test_dolly_jsonl_to_pairs_keeps_the_five_good_records(dolly_file):
    raw = _raw_lines(dolly_file)
    pairs, stats = to_pairs(read_dolly(dolly_file))
    # The fixture README states which lines survive: 1, 2, 3, 8, 11 (1-based).
    kept = [raw[i - 1] for i in (1, 2, 3, 8, 11)]
    expected_queries = [r['instruction'] + ('\n' + r['context'] if r['context'] else '') for r in kept]
    assert [p.query for p in pairs] == expected_queries
    assert [p.positive for p in pairs] == [r['response'] for r in kept]
    assert [p.category for p in pairs] == [r['category'] for r in kept]
    assert {p.lang for p in pairs} == {'en'}
    assert pairs[0].origin == f'{dolly_file}:1'
    assert (stats.read, stats.empty, stats.degenerate, stats.duplicate, stats.kept) == (11, 2, 2, 2, 5)
    assert stats.categories == {'closed_qa': 1, 'classification': 1, 'open_qa': 1, 'summarization': 1,
                                'brainstorming': 1}


def test_dolly_json_array_reads_like_jsonl(dolly_file, tmp_path):
    array = tmp_path / 'dolly.json'
    array.write_text(json.dumps(_raw_lines(dolly_file), indent=1), encoding='utf-8')
    from_array = [r[:4] for r in read_dolly(array)]
    assert from_array == [r[:4] for r in read_dolly(dolly_file)]
    # format detection from the first record, through the general entry point
    assert [r[:4] for r in read_instructions(array)] == from_array


@pytest.mark.parametrize('line, message', [
    ('{"instruction": "a", "context": "", "response": "b", "category": "x"', 'invalid JSON line'),
    ('{"instruction": "a", "context": "", "category": "x"}', "missing field 'response'"),
    ('{"instruction": 3, "context": "", "response": "b", "category": "x"}', "field 'instruction' should be a string"),
    ('["instruction", "response"]', 'expected a JSON object'),
])
def test_bad_dolly_line_names_file_and_line(dolly_file, tmp_path, line, message):
    bad = tmp_path / 'bad.jsonl'
    lines = dolly_file.read_text(encoding='utf-8').splitlines()
    bad.write_text('\n'.join(lines[:2] + [line] + lines[2:]) + '\n', encoding='utf-8')
    with pytest.raises(InstructionDataError) as info:
        read_dolly(bad)
    text = str(info.value)
    assert text.startswith(f'{bad}:3') and message in text and '\n' not in text


def test_unknown_format_and_missing_source(tmp_path):
    odd = tmp_path / 'odd.jsonl'
    odd.write_text('{"question": "q", "answer": "a"}\n', encoding='utf-8')
    with pytest.raises(InstructionDataError, match=r'odd\.jsonl:1: unknown instruction format'):
        read_instructions(odd)
    with pytest.raises(InstructionDataError, match='not a file, a folder, a hub id'):
        read_instructions(tmp_path / 'nope.jsonl')


def test_dolly_from_hub_offline_is_one_clear_line(monkeypatch):
    # The same switch a user sets offline (HF_HUB_OFFLINE=1): datasets then fails at once.
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    with pytest.raises(InstructionDataError) as info:
        read_instructions('dolly')
    text = str(info.value)
    assert DOLLY_HUB_ID in text and 'local JSONL/JSON file' in text and '\n' not in text


# -- offline stand-ins (../shared/data/train/instructions) ----------------------------------------

def test_self_instruct_files(train_dir):
    seed = train_dir / 'instructions' / 'seed_tasks.jsonl'
    raw = _raw_lines(seed)
    records = read_self_instruct(seed)
    assert len(records) == sum(len(r['instances']) for r in raw)
    first = raw[0]
    assert records[0].instruction == first['instruction']
    assert records[0].category == first['name']
    user = read_instructions('self-instruct-user', train_dir=train_dir)
    assert user[0].category == _raw_lines(train_dir / 'instructions' / 'user_oriented_instructions.jsonl')[0][
        'motivation_app']
    pairs, stats = to_pairs(records)
    # a seed task with an instance input becomes "instruction\ninput"
    with_input = next(r for r in raw if r['instances'][0]['input'].strip())
    expected = with_input['instruction'].strip() + '\n' + with_input['instances'][0]['input'].strip()
    assert expected in {p.query for p in pairs}
    assert stats.read == len(records) and stats.kept == len(pairs) > 0.9 * len(records)


def test_t0_pairs_are_clean_and_unique(train_dir):
    from pyserini_hybrid.train._data import normalize_text

    folder = train_dir / 'instructions' / 't0'
    records = read_t0(folder)
    stems = {p.stem for p in folder.glob('*.jsonl')}
    assert {r.category for r in records} == stems
    assert not any(r.response.endswith('<|endoftext|>') for r in records)
    pairs, stats = to_pairs(records)
    assert stats.read == len(records) == stats.empty + stats.degenerate + stats.duplicate + stats.kept
    # trec_* templates have empty completions only: none of them may give a pair
    assert stats.empty >= sum(1 for r in records if r.category.startswith('trec_'))
    assert not any(p.category.startswith('trec_') for p in pairs)
    assert all(p.query.strip() and len(p.positive) >= 2 for p in pairs)
    for texts in ([p.query for p in pairs], [p.positive for p in pairs]):
        assert len({normalize_text(t) for t in texts}) == len(texts)
    # a class label ("Yes", "positive", ...) survives at most once over the whole set
    labels = [p for p in pairs if normalize_text(p.positive) in ('yes', 'no', 'positive', 'negative')]
    assert len(labels) <= 4


def test_offline_group_dedupes_across_sources_and_caps(train_dir):
    pairs, stats = load_instruction_pairs('self-instruct', train_dir=train_dir)
    seed, _ = load_instruction_pairs('self-instruct-seed', train_dir=train_dir)
    assert pairs[:len(seed)] == seed
    capped, cstats = load_instruction_pairs('self-instruct', train_dir=train_dir, max_pairs=50, sample_seed=7)
    again, _ = load_instruction_pairs('self-instruct', train_dir=train_dir, max_pairs=50, sample_seed=7)
    assert capped == again and len(capped) == cstats.kept == 50
    positions = [pairs.index(p) for p in capped]
    assert positions == sorted(positions)  # a subset, in source order


# -- training adapter and task instructions -------------------------------------------------------

def test_adapter_gives_an_english_mono_table(dolly_file, tmp_path):
    table = instructions(tmp_path, ['en', 'de'], sources=[str(dolly_file)])
    assert table.name == 'instructions' and table.langs == ('en',) and len(table) == 5
    assert list(table.mono_items('en')) == list(range(5)) and len(table.cross_items()) == 0
    query, positive, negative = table.row_texts(table.row_index(0, 0, 0))
    assert query.startswith('When did Virgin Australia') and positive.startswith('Virgin Australia commenced')
    assert negative is None
    assert table.meta['categories'][3] == 'summarization' and table.meta['stats']['kept'] == 5
    assert len(instructions(tmp_path, ['de'], sources=[str(dolly_file)])) == 0


def test_every_training_source_has_a_task_instruction():
    from pyserini_hybrid.train._data import ADAPTERS

    missing = [name for name in ADAPTERS if name not in TASK_INSTRUCTIONS]
    assert not missing
    assert task_for('ntrex', {'mode': 'translation'}) != task_for('ntrex', {'mode': 'next-sentence'})
    # QA sources are trained with the very instruction used on LAReQA at search time
    assert task_for('tydiqa') == task_for('lareqa') == SEARCH_TASK
    assert instruct_query('who?', 'Find it') == 'Instruct: Find it\nQuery: who?'
    assert INSTRUCT_TEMPLATE.format(task='T') == 'Instruct: T\nQuery: '
    with pytest.raises(KeyError, match='no task instruction'):
        task_for('nonexistent')
