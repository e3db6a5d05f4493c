"""The experiment runner: train every arm x seed with one budget, evaluate it, write one report.

Layout of the output folder (``config.output_dir``)::

    arms/<arm>/seed-<seed>/          one unit (the base arm: arms/base/)
        recipe.yaml                  the training recipe of the unit (stage-1.yaml + recipe.yaml for two stages)
        results-<collection>.json.xz per-query AP and rank distance of every setting (exact, full pool)
        results-<collection>-<correction>.json.xz   the same under each bias correction but none
        done.json                    the unit's complete marker, written last and atomically
    report.md, report.json           the experiment report (rebuilt from the units on every run)
    figures/*.svg                    its figures (when matplotlib is installed)

Everything there is small and machine-independent, meant to be committed: a later session (or a
clean clone) resumes from it and rebuilds the report byte for byte. The trained models and their
checkpoints go to ``config.models_dir`` (``models/experiments/<name>/<arm>/seed-<seed>/``,
git-ignored) and are deleted once evaluated unless keep_models.

A unit whose ``done.json`` matches the configuration is neither trained nor evaluated again; a unit
finished under another configuration is an error (delete its folder to redo it). A collection
whose files appear later (MLQA-R) is evaluated for finished units, retraining their (seeded) models.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import lzma
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pyserini_hybrid._io import atomic_write
from pyserini_hybrid.experiment._config import ARMS, ExperimentConfig, ExperimentError

__all__ = ['Unit', 'plan', 'arm_recipes', 'recipe_yaml', 'available_collections', 'evaluate_model',
           'run_units', 'load_unit_results', 'results_path', 'DONE_FILE', 'RESULTS_FORMAT']

DONE_FILE = 'done.json'
RESULTS_FORMAT = 'results-{collection}.json.xz'
TRAINED_ARMS = tuple(a for a in ARMS if a != 'base')
# Measures kept per query in the unit files: what the report tests. Per-setting means of the
# other measures are kept in done.json.
_PER_QUERY = ('AP',)


@dataclass(frozen=True)
class Unit:
    """One training run (or, for ``base``, none) and its evaluation."""
    arm: str
    seed: int | None
    dir: Path

    @property
    def label(self) -> str:
        return self.arm if self.seed is None else f'{self.arm} seed {self.seed}'


def results_path(unit_dir: Path, collection: str, correction: str = 'none') -> Path:
    """A unit's per-query results of one collection under one bias correction (``none``: the
    uncorrected file, named as before corrections existed; ``lsar:8`` -> ``...-lsar_8.json.xz``)."""
    if correction == 'none':
        return unit_dir / RESULTS_FORMAT.format(collection=collection)
    return unit_dir / f"results-{collection}-{correction.replace(':', '_')}.json.xz"


def model_root(config: ExperimentConfig, arm: str, seed: int) -> Path:
    """Where a trained unit's model (and a two-stage unit's first stage) is written: outside the
    committed output folder."""
    return config.models_dir / arm / f'seed-{seed}'


def plan(config: ExperimentConfig) -> list[Unit]:
    """Units in run order: arms as listed, seeds as listed (the base arm once)."""
    root = config.output_dir / 'arms'
    units = []
    for arm in config.arms:
        if arm == 'base':
            units.append(Unit(arm, None, root / 'base'))
        else:
            units.extend(Unit(arm, seed, root / arm / f'seed-{seed}') for seed in config.seeds)
    return units


# ------------------------------------------------------------------------------------------------
# recipes


def _base_recipe(config: ExperimentConfig):
    from pyserini_hybrid.train._recipe import RecipeError, load_recipe

    try:
        return load_recipe(config.recipe)
    except RecipeError as exc:
        raise ExperimentError(f"{config.source}: recipe {config.recipe}: {exc}") from None


def _instruction_entry(config: ExperimentConfig, mixed: bool = False):
    """The instruction pairs as a recipe entry; ``mixed``: beside the corpora (hybrid+instruct), where
    ``instructions.share`` applies."""
    from pyserini_hybrid.train._recipe import DataEntry

    ins = config.instructions
    options = {'sources': list(ins.sources), 'max_pairs': ins.max_pairs, 'min_response_chars': ins.min_response_chars}
    return DataEntry(corpus='instructions', weight=ins.weight, share=ins.share if mixed else None, options=options,
                     drop_eval_overlap=ins.drop_eval_overlap)


def _with_tasks(entries: Sequence[Any]) -> tuple:
    """Fill each entry's E5-instruct task from the table of task descriptions (mode a)."""
    from pyserini_hybrid.train._instructions import task_for

    return tuple(e if e.task else dataclasses.replace(e, task=task_for(e.corpus, e.options)) for e in entries)


def arm_recipes(config: ExperimentConfig, arm: str, seed: int, *, base_recipe: Any = None) -> list:
    """The training recipe(s) of one trained unit: one, or two for ``instruct-then-hybrid``.

    Every trained arm gets the experiment's base model, budget (steps, batch size[, lr]) and seed,
    and no early stopping (every arm trains exactly its steps; the validation loss is still logged);
    the arms differ only in strategy and data (see :data:`~pyserini_hybrid.experiment.ARMS`). In
    hybrid+instruct the instruction source gets ``instructions.share`` of the batches when it is
    set (recipe option ``data[].share``), else its share follows its size x ``instructions.weight``.
    hybrid+instruct-e5 is the same mix at ``instructions.e5_share``, with the E5-instruct query
    template and one task per source (mode a) whatever ``query_instructions`` says. Models are
    written under :func:`model_root`.
    """
    from pyserini_hybrid.encoders._tasks import INSTRUCT_TEMPLATE

    if arm not in TRAINED_ARMS:
        raise ValueError(f"arm {arm!r} is not trained")
    recipe = base_recipe if base_recipe is not None else _base_recipe(config)
    corpora = tuple(e for e in recipe.data if e.corpus != 'instructions')
    if not corpora and arm != 'instruct-only':
        raise ExperimentError(f"{config.recipe}: the recipe has no corpus besides instructions")
    instructions = (_instruction_entry(config),)
    budget = config.budget
    instructed = config.query_instructions or arm == 'hybrid+instruct-e5'
    # no early stopping: it would load the best checkpoint and so train some arms fewer steps
    common = dict(base=config.base or recipe.base, batch_size=budget.batch_size, lr=budget.lr, seed=seed,
                  alpha=config.alpha, validation=dataclasses.replace(recipe.validation, patience=0))
    if instructed:
        common['query_instruction'] = INSTRUCT_TEMPLATE
    name = f'{config.name}-{arm}-seed{seed}'

    def make(data: tuple, strategy: str, steps: int, output: Path, base: str | None = None, suffix: str = ''):
        if instructed:
            data = _with_tasks(data)
        overrides = dict(common, name=name + suffix, data=data, strategy=strategy, max_steps=steps,
                         output=str(output))
        if base is not None:
            overrides['base'] = base
        try:
            return recipe.with_overrides(f'{config.source} (arm {arm})', **overrides)
        except ValueError as exc:
            raise ExperimentError(f"{config.source}: arm {arm}: {exc}") from None

    unit_dir = model_root(config, arm, seed)
    model = unit_dir / 'model'
    if arm in ('mono', 'cross', 'hybrid'):
        return [make(corpora, arm, budget.max_steps, model)]
    if arm == 'instruct-only':
        return [make(instructions, 'mono', budget.max_steps, model)]
    if arm == 'hybrid+instruct':
        return [make(corpora + (_instruction_entry(config, mixed=True),), 'hybrid', budget.max_steps, model)]
    if arm == 'hybrid+instruct-e5':
        mixed = dataclasses.replace(_instruction_entry(config), share=config.instructions.e5_share)
        return [make(corpora + (mixed,), 'hybrid', budget.max_steps, model)]
    first = max(1, min(budget.max_steps - 1, round(budget.max_steps * config.two_stage_fraction)))
    stage1 = unit_dir / 'stage-1'
    return [make(instructions, 'mono', first, stage1, suffix='-stage1'),
            make(corpora, 'hybrid', budget.max_steps - first, model, base=str(stage1), suffix='-stage2')]


def recipe_yaml(recipe: Any) -> str:
    """A recipe as the YAML ``python -m pyserini_hybrid.train --recipe`` reads (adapter options inline)."""
    import yaml

    data = recipe.to_dict()
    entries = []
    for entry in recipe.data:
        item = {'corpus': entry.corpus}
        if entry.name:
            item['name'] = entry.name
        for f in dataclasses.fields(entry):
            if f.name not in ('corpus', 'name', 'options') and getattr(entry, f.name) != f.default:
                item[f.name] = getattr(entry, f.name)
        item.update(entry.options)
        entries.append(item)
    data['data'] = entries
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


# ------------------------------------------------------------------------------------------------
# evaluation


def available_collections(config: ExperimentConfig) -> list[str]:
    """The configured collections whose files are here (XQuAD-R must be; MLQA-R may be missing)."""
    from pyserini_hybrid.datasets import COLLECTIONS

    ev = config.evaluation
    if ev.data_dir is not None:
        present = [c for c in ev.collections
                   if all((Path(ev.data_dir) / c / f'{lang}.json').is_file() for lang in COLLECTIONS[c])]
    else:
        from pyserini_hybrid.train._hygiene import available_collections as local

        here = set(local())
        present = [c for c in ev.collections if c in here]
    if 'xquad-r' not in present:
        where = ev.data_dir or '$PYSERINI_HYBRID_DATA / the ir_datasets cache'
        raise ExperimentError(f"XQuAD-R files not found in {where}: the experiment needs them")
    return present


def eval_precision(config: ExperimentConfig) -> str:
    """The precision every arm is evaluated at on this machine: ``evaluation.precision`` with
    ``'auto'`` resolved (:func:`pyserini_hybrid.encoders.resolve_precision`)."""
    from pyserini_hybrid.encoders import resolve_precision

    return resolve_precision(config.evaluation.precision)


def _encoder(model: str, config: ExperimentConfig):
    from pyserini_hybrid.encoders import Encoder, get_spec
    from pyserini_hybrid.encoders._tasks import SEARCH_TASK

    ev = config.evaluation
    template = get_spec(model).query_instruction or ''
    # a model trained with task instructions is searched with the LAReQA task
    task = SEARCH_TASK if '{task}' in template else None
    return Encoder(model, batch_size=ev.batch_size, precision=eval_precision(config), threads=ev.threads,
                   task=task)


def evaluate_model(model: str, config: ExperimentConfig, collections: Sequence[str], *,
                   train_dir: str | os.PathLike | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, dict[str, dict]]:
    """Exact full-pool results of ``model`` on every setting of each collection, under every bias
    correction of ``evaluation.bias_corrections`` (the pool embedded once).

    The corrections' statistics are fitted from NTREX training-side text (``train_dir``) on first
    use and saved beside the model (a trained model) or in the cache (a named one), as
    ``python -m pyserini_hybrid.eval --bias-correction`` does.

    Returns ``{collection: {correction: {dataset_id: SettingResult}}}`` (eval module's per-query results).
    """
    from pyserini_hybrid.datasets import list_settings, load_pool
    from pyserini_hybrid.encoders import load_bias_correction, parse_bias_method
    from pyserini_hybrid.eval import MEASURES, exact_scores

    encoder = _encoder(model, config)
    fixes = {}
    for label in config.evaluation.bias_corrections:
        method, rank = parse_bias_method(label)
        fixes[label] = load_bias_correction(encoder, method, rank=rank, source='ntrex', train_dir=train_dir, log=log)
    out = {}
    for collection in collections:
        pool = load_pool(collection, data_dir=config.evaluation.data_dir, verify=config.evaluation.verify)
        q_emb, d_emb = _embed(pool, encoder)
        # a setting without any query (possible in hand-made data) has no AP to report
        settings = [s for s in list_settings(collection) if len(pool.query_indices(s))]
        out[collection] = {}
        for label, fix in fixes.items():
            note = '' if label == 'none' else f', bias correction {fix.describe()}'
            out[collection][label] = exact_scores(pool, q_emb, d_emb, settings, similarity=encoder.spec.similarity,
                                                  measures=MEASURES, source=f'exact: {model}{note}',
                                                  correction=None if label == 'none' else fix)
    return out


def _embed(pool: Any, encoder: Any):
    """Query and doc vectors aligned with the pool, as the search module embeds a pool.

    A registered encoder (the base arm) goes through the shared embedding cache, which other runs
    may already have filled; a trained model is embedded once, so its cache is temporary.
    """
    from pyserini_hybrid.encoders import REGISTRY
    from pyserini_hybrid.encoders._cache import embed_pool

    if encoder.spec.name in REGISTRY:
        return embed_pool(pool, encoder)
    import tempfile

    with tempfile.TemporaryDirectory(prefix='pyserini_hybrid_experiment_') as cache_dir:
        return embed_pool(pool, encoder, cache_dir=cache_dir)


_PER_QID = ('query_langs', 'rank_distance')   # SettingResult's other {qid: value} fields


def _exact_reciprocal(value: float) -> float | int:
    """``n`` where ``value`` is exactly ``1.0 / n`` (the AP of a query with one relevant document at
    rank n, i.e. every Mono and Cross query), else ``value``: a small int compresses far better."""
    if value > 0:
        n = round(1 / value)
        if n >= 1 and 1.0 / n == value:
            return n
    return value


def _save_results(path: Path, results: Mapping[str, Any], reference: Path | None = None) -> None:
    """Every field of each setting's result, per-query values of :data:`_PER_QUERY` only (the
    others as setting means), as xz-compressed JSON written atomically.

    Lossless but compact (~0.22 MB a file for XQuAD-R, 7x less than gzip JSON of dicts, so that an
    experiment's results can be committed): per-query values are lists aligned with the setting's
    ``qids``, an AP of exactly 1/n is stored as n, and xz finds the ids repeated across settings.
    A setting whose result equals that of the ``reference`` file (a saved sibling, e.g. the
    uncorrected results: a document shift cannot reorder one language's documents, so Mono and
    Cross are unchanged by it) is stored as a pointer to it.
    """
    same = load_unit_results(reference) if reference is not None else {}
    payload = {}
    for dataset_id, r in results.items():
        if dataset_id in same and dataclasses.replace(same[dataset_id], source=r.source) == r:
            payload[dataset_id] = {'same_as': reference.name, 'source': r.source}
            continue
        fields = dataclasses.asdict(r)
        qids = list(r.per_query[_PER_QUERY[0]])
        fields['qids'] = qids
        fields['per_query'] = {m: [_exact_reciprocal(r.per_query[m][q]) for q in qids] for m in _PER_QUERY}
        for name in _PER_QID:
            values = fields[name]
            if values is not None and len(values) == len(qids) and all(q in values for q in qids):
                fields[name] = [values[q] for q in qids]
        payload[dataset_id] = {'result': fields, 'means': {m: r.mean(m) for m in r.per_query}}
    raw = lzma.compress(json.dumps(payload, sort_keys=True).encode('utf-8'), preset=6)
    with atomic_write(path, 'wb') as out:
        out.write(raw)


def load_unit_results(path: str | os.PathLike) -> dict:
    """Read a unit's ``results-<collection>.json.xz`` back into ``{dataset_id: SettingResult}``
    (also the plain gzip JSON of units finished before 2026-12-03)."""
    from pyserini_hybrid.eval import SettingResult

    path = Path(path)
    try:
        data = path.read_bytes()
        data = gzip.decompress(data) if data[:2] == b'\x1f\x8b' else lzma.decompress(data)
        payload = json.loads(data.decode('utf-8'))
        known = {f.name for f in dataclasses.fields(SettingResult)}
        out, siblings = {}, {}
        for dataset_id, entry in payload.items():
            if 'same_as' in entry:
                name = entry['same_as']
                if name not in siblings:
                    if Path(name).name != name or name == path.name:
                        raise ValueError(f"bad reference {name!r}")
                    siblings[name] = load_unit_results(path.with_name(name))
                out[dataset_id] = dataclasses.replace(siblings[name][dataset_id], source=entry['source'])
                continue
            fields = {k: v for k, v in entry['result'].items() if k in known}
            qids = entry['result'].get('qids')
            if qids is not None:   # lists aligned with qids
                fields['per_query'] = {m: {q: v if isinstance(v, float) else 1.0 / v for q, v in zip(qids, values)}
                                       for m, values in fields['per_query'].items()}
                for name in _PER_QID:
                    if isinstance(fields.get(name), list):
                        fields[name] = dict(zip(qids, fields[name]))
            fields['doc_langs'] = tuple(fields['doc_langs'])
            out[dataset_id] = SettingResult(**fields)
    except ExperimentError:   # a sibling's, already naming its file
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, lzma.LZMAError, ZeroDivisionError) as exc:
        raise ExperimentError(f"{path}: unreadable results ({exc}); delete the unit folder to redo it") from None
    return out


# ------------------------------------------------------------------------------------------------
# running


def _fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode('utf-8')).hexdigest()


def _unit_identity(config: ExperimentConfig, unit: Unit, recipes: list) -> dict:
    """What a unit's numbers depend on: its recipes (data, budget, seed, base), the eval data and precision.

    Paths inside the unit folder and its model folder are written relative to them, so a moved (or
    cloned) experiment folder still matches its markers. The bias corrections are not part of it:
    they are checked per unit (:func:`_missing_corrections`).
    """
    ev = config.evaluation
    inside = str(unit.dir)
    models = str(model_root(config, unit.arm, unit.seed)) if unit.seed is not None else None

    def relative(value: Any) -> Any:
        if isinstance(value, str) and models is not None and value.startswith(models):
            return '<models>' + value[len(models):]
        if isinstance(value, str) and value.startswith(inside):
            return '<unit>' + value[len(inside):]
        if isinstance(value, dict):
            return {k: relative(v) for k, v in value.items()}
        if isinstance(value, list):
            return [relative(v) for v in value]
        return value

    identity = {'arm': unit.arm, 'seed': unit.seed, 'base': config.base or (recipes[0].base if recipes else None),
                'recipes': [relative(r.to_dict()) for r in recipes], 'eval_data_dir': ev.data_dir,
                'eval_verify': ev.verify}
    precision = eval_precision(config)   # what ran, not 'auto': another machine may resolve it otherwise
    if precision != 'fp32':  # fp32 is left out: units finished before the option existed still match
        identity['eval_precision'] = precision
    return identity


def _missing_corrections(config: ExperimentConfig, done: Mapping[str, Any], collection: str) -> list[str]:
    """The configured bias corrections a finished collection of a unit has no results for (a unit
    finished before ``evaluation.bias_corrections`` listed them holds ``none`` only)."""
    have = done.get('collections', {}).get(collection, {}).get('corrections', {'none': None})
    return [c for c in config.evaluation.bias_corrections if c not in have]


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"{path}: unreadable ({exc}); delete the unit folder to redo it") from None


def _train_stage(recipe: Any, *, train_dir: Any, device: str | None, progress: bool, index: dict) -> dict:
    from pyserini_hybrid.train._trainer import checkpoint_dir, train

    output = recipe.output_dir
    if (output / 'training.json').is_file():
        done = json.loads((output / 'training.json').read_text(encoding='utf-8'))
        trained = {k: v for k, v in (done.get('recipe') or {}).items() if k != 'output'}
        wanted = {k: v for k, v in json.loads(json.dumps(recipe.to_dict(), default=str)).items() if k != 'output'}
        if _fingerprint(trained) != _fingerprint(wanted):
            raise ExperimentError(f"{output} was trained with another recipe: delete it to retrain")
        return {'steps': done.get('steps'), 'train_seconds': done.get('train_seconds'),
                'pairs_per_second': done.get('pairs_per_second'), 'reused': True}
    output.parent.mkdir(parents=True, exist_ok=True)  # the unit's folder under the models root
    resume = checkpoint_dir(output).exists()
    result = train(recipe, train_dir=train_dir, resume=resume, device=device, progress=progress, eval_index=index)
    if not result.completed:
        raise ExperimentError(f"training of {output} stopped at step {result.global_step} of {recipe.max_steps}; "
                              "run the experiment again to resume it")
    info = json.loads((output / 'training.json').read_text(encoding='utf-8'))
    return {'steps': result.global_step, 'train_seconds': info.get('train_seconds'),
            'pairs_per_second': round(result.pairs_per_second, 3), 'sources': result.sources, 'reused': False}


class _Log:
    def __init__(self, log: Callable[[str], None] | None):
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def __call__(self, msg: str) -> None:
        self.log(f'[experiment] {msg}')


def run_units(config: ExperimentConfig, *, train_dir: str | os.PathLike | None = None,
              device: str | None = None, progress: bool = False, keep_models: bool = False,
              report_only: bool = False, only_arms: Sequence[str] | None = None,
              only_seeds: Sequence[int] | None = None,
              log: Callable[[str], None] | None = None) -> list[str]:
    """Run (or resume) every unit of ``config``; returns the collections evaluated.

    Parameters and errors are those of :func:`pyserini_hybrid.experiment.run_experiment`, which then
    reports on the finished units (this module does not import the report module, which reads the
    units this one writes).
    """
    say = _Log(log)
    unknown = sorted(set(only_arms or ()) - set(config.arms))
    if unknown:
        raise ExperimentError(f"arm(s) {', '.join(unknown)} not in the experiment's arms ({', '.join(config.arms)})")
    unknown_seeds = sorted(set(only_seeds or ()) - set(config.seeds))
    if unknown_seeds:
        raise ExperimentError(f"seed(s) {', '.join(map(str, unknown_seeds))} not in the experiment's seeds "
                              f"({', '.join(map(str, config.seeds))})")
    out_dir = config.output_dir
    if not report_only:
        out_dir.mkdir(parents=True, exist_ok=True)
    collections = available_collections(config)
    needs_training = any(a in TRAINED_ARMS for a in config.arms)
    base_recipe = _base_recipe(config) if needs_training else None
    base_model = config.base or (base_recipe.base if base_recipe is not None else None)
    if base_model is None:
        raise ExperimentError(f"{config.source}: set 'base' (or use a trained arm, whose recipe names one)")
    index = None
    units = plan(config)
    say(f"{config.name}: {len(units)} units ({', '.join(config.arms)}; seeds {', '.join(map(str, config.seeds))}), "
        f"{config.budget.max_steps} steps x batch {config.budget.batch_size} per trained arm, "
        f"evaluated on {', '.join(collections)} at encoder precision {eval_precision(config)} "
        f"(asked: {config.evaluation.precision})")
    for unit in units:
        recipes = [] if unit.arm == 'base' else arm_recipes(config, unit.arm, unit.seed, base_recipe=base_recipe)
        identity = _unit_identity(config, unit, recipes)
        if unit.arm == 'base':
            identity['base'] = base_model
        fingerprint = _fingerprint(identity)
        done_path = unit.dir / DONE_FILE
        done = _read_json(done_path)
        if done is not None and done.get('fingerprint') != fingerprint:
            before, now = done.get('identity') or {}, json.loads(json.dumps(identity))   # both as JSON has them
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            detail = f" ({', '.join(changed)} differ)" if changed else ''
            # Read on another kind of CPU, a unit is fine for the report (which takes each unit's precision
            # from its done.json); continuing it there would mix precisions.
            if not (report_only and changed == ['eval_precision']):
                if changed == ['eval_precision']:
                    was, now = before.get('eval_precision', 'fp32'), now.get('eval_precision', 'fp32')
                    detail = (f" (evaluated at precision {was}; this machine resolves "
                              f"{config.evaluation.precision!r} to {now}: set evaluation.precision to {was} "
                              "to continue it)")
                raise ExperimentError(f"{done_path}: this unit was finished under another configuration{detail}; "
                                      f"delete {unit.dir} to redo it, or restore the configuration")
        todo = [c for c in collections if done is None or c not in done.get('collections', {})]
        missing = sorted({m for c in collections if c not in todo for m in _missing_corrections(config, done, c)})
        if missing:
            # its model is gone, and a retrained one would be another model on another machine:
            # corrected results must come from the very vectors the uncorrected ones did
            raise ExperimentError(f"{done_path}: no results under bias correction {', '.join(missing)} (finished "
                                  f"before evaluation.bias_corrections listed it); delete {unit.dir} to redo the "
                                  "unit, or leave the correction out of the configuration")
        if not todo:
            say(f"{unit.label}: done, skipped")
            continue
        skipped = ((only_arms and unit.arm not in only_arms)
                   or (only_seeds and unit.seed is not None and unit.seed not in only_seeds))
        if report_only or skipped:
            say(f"{unit.label}: not finished ({', '.join(todo)} missing), left out of the report")
            continue
        unit.dir.mkdir(parents=True, exist_ok=True)
        training = (done or {}).get('training', [])
        model = base_model
        if recipes:
            model = str(recipes[-1].output_dir)
            if not Path(model, 'training.json').is_file():
                # not trained yet, interrupted, or deleted after an earlier evaluation (a collection
                # added since): training is seeded, so the same recipe re-makes the same model
                if index is None:
                    from pyserini_hybrid.train._hygiene import eval_index

                    say('building the zero-shot hygiene index (evaluation texts)')
                    index = eval_index()
                training = []
                for i, recipe in enumerate(recipes):
                    name = 'recipe.yaml' if i == len(recipes) - 1 else f'stage-{i + 1}.yaml'
                    with atomic_write(unit.dir / name) as handle:
                        handle.write(recipe_yaml(recipe))
                    say(f"{unit.label}: training {recipe.strategy} for {recipe.max_steps} steps -> {recipe.output_dir}")
                    training.append(_train_stage(recipe, train_dir=train_dir, device=device, progress=progress,
                                                 index=index))
        evaluation = dict((done or {}).get('collections', {}))
        for collection in todo:
            say(f"{unit.label}: evaluating on {collection}")
            started = time.time()
            by_correction = evaluate_model(model, config, [collection], train_dir=train_dir, log=say)[collection]
            plain = results_path(unit.dir, collection)
            _save_results(plain, by_correction['none'])
            for label, results in by_correction.items():
                if label != 'none':   # the settings a correction leaves unchanged point to the plain file
                    _save_results(results_path(unit.dir, collection, label), results, reference=plain)
            evaluation[collection] = {'seconds': round(time.time() - started, 1),
                                      'summary': _summary(by_correction['none']),
                                      'corrections': {label: _summary(r) for label, r in by_correction.items()}}
        record = {'fingerprint': fingerprint, 'arm': unit.arm, 'seed': unit.seed, 'model': model,
                  'training': training, 'collections': evaluation, 'identity': identity,
                  'finished': time.strftime('%Y-%m-%dT%H:%M:%S')}
        with atomic_write(done_path) as handle:
            json.dump(record, handle, indent=2, sort_keys=True, default=str)
            handle.write('\n')
        say(f"{unit.label}: done ({_short(evaluation[collections[0]]['summary'])})")
        if recipes and not keep_models:
            for recipe in recipes:
                shutil.rmtree(recipe.output_dir, ignore_errors=True)
            try:  # the unit's (now empty) folder under the models root
                recipes[-1].output_dir.parent.rmdir()
            except OSError:
                pass

    return collections


def _summary(results: Mapping[str, Any]) -> dict:
    from pyserini_hybrid.eval import aggregate

    out = {}
    for kind in ('mono', 'cross', 'multi'):
        agg = aggregate(results, kind, 'AP')
        out[kind] = None if agg is None else agg['macro']
    bias = aggregate(results, 'multi', 'rank_distance')
    out['rank_distance'] = None if bias is None else bias['macro']
    return out


def _short(summary: Mapping[str, Any]) -> str:
    parts = [f"{k} {summary[k]:.3f}" for k in ('mono', 'cross', 'multi') if summary.get(k) is not None]
    if summary.get('rank_distance') is not None:
        parts.append(f"rank distance {summary['rank_distance']:.1f}")
    return ', '.join(parts)
