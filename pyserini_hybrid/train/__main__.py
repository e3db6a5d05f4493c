"""``python -m pyserini_hybrid.train --recipe encoders/NAME.yaml [overrides]``: train an encoder.

Examples::

    python -m pyserini_hybrid.train --recipe encoders/me5-small-hybrid.yaml
    python -m pyserini_hybrid.train --recipe encoders/me5-small-hybrid.yaml --alpha 0.4 --output models/h04
    python -m pyserini_hybrid.train --recipe encoders/me5-small-hybrid.yaml --resume     # after an interruption
    python -m pyserini_hybrid.train --recipe encoders/me5-small-hybrid.yaml --dry-run    # data + hygiene only

Errors (bad recipe, missing data, evaluation text in the training data, existing output) print one
``error: ...`` line and exit with status 2; an interrupted run exits with 130 and can be resumed.
"""
from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    from pyserini_hybrid.encoders import TRAIN_PRECISIONS
    from pyserini_hybrid.train._recipe import STRATEGIES

    parser = argparse.ArgumentParser(
        prog='python -m pyserini_hybrid.train',
        description='Train a multilingual dense encoder with mono, cross or hybrid batches.')
    parser.add_argument('--recipe', required=True, metavar='YAML', help='recipe file, e.g. encoders/me5-small-hybrid.yaml')
    over = parser.add_argument_group('overrides (replace the recipe value)')
    over.add_argument('--base', metavar='ENCODER', help='base encoder: registry name or model directory')
    over.add_argument('--strategy', choices=STRATEGIES)
    over.add_argument('--alpha', type=float, help='probability of a monolingual batch (hybrid)')
    over.add_argument('--max-steps', type=int, metavar='N')
    over.add_argument('--batch-size', type=int, metavar='N')
    over.add_argument('--lr', type=float, metavar='LR', help='peak learning rate')
    over.add_argument('--seed', type=int)
    over.add_argument('--output', metavar='DIR', help='model directory to write (default models/<recipe name>)')
    over.add_argument('--freeze-embeddings', action=argparse.BooleanOptionalAction, default=None,
                      help='freeze the input word embeddings (faster on CPU)')
    over.add_argument('--precision', choices=TRAIN_PRECISIONS,
                      help='bf16: mixed-precision autocast (about 2x on CPUs with AMX / AVX512-BF16); auto: bf16 '
                           'where native (such a CPU, a GPU), fp32 elsewhere')
    parser.add_argument('--resume', action='store_true',
                        help='continue from the newest checkpoint in <output>.checkpoints')
    parser.add_argument('--train-dir', metavar='DIR',
                        help='training corpora folder (default $PYSERINI_HYBRID_TRAIN_DATA or ../shared/data/train)')
    parser.add_argument('--device', metavar='DEVICE', help="'cpu' to force the CPU (default: a GPU when present)")
    parser.add_argument('--keep-checkpoints', action='store_true', help='keep <output>.checkpoints after success')
    parser.add_argument('--dry-run', action='store_true',
                        help='read the corpora and run the zero-shot hygiene check, then stop')
    parser.add_argument('--batch-log', metavar='JSONL',
                        help='write one JSON line per training step: its sampler, sources and row languages')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def _dry_run(recipe, train_dir) -> None:
    from pyserini_hybrid.train._hygiene import check_zero_shot, eval_index
    from pyserini_hybrid.train._trainer import load_tables

    index = eval_index()
    tables, dropped = load_tables(recipe, train_dir, index)
    n = check_zero_shot(tables, index)
    print(f"recipe {recipe.name}: strategy {recipe.strategy}, alpha {recipe.alpha}, "
          f"languages {', '.join(recipe.languages)}")
    for table in tables:
        mono = sum(len(table.mono_items(l)) for l in table.langs)
        print(f"  {table.name:12s} items {len(table):6d}  languages {','.join(table.langs):26s} "
              f"mono rows {mono:6d}  cross items {len(table.cross_items()):6d}"
              f"{'  dropped (eval overlap) ' + str(dropped[table.name]) if table.name in dropped else ''}")
    print(f"zero-shot hygiene: {n} training texts checked against {len(index)} evaluation texts: no overlap")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    logging.getLogger('pyserini_hybrid').setLevel(logging.INFO)   # our one-line notes (e.g. the precision)
    from pyserini_hybrid.train._recipe import load_recipe
    from pyserini_hybrid.train._trainer import TrainError

    recipe = None
    try:
        recipe = load_recipe(args.recipe).with_overrides(
            base=args.base, strategy=args.strategy, alpha=args.alpha, max_steps=args.max_steps,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, output=args.output,
            freeze_embeddings=args.freeze_embeddings, precision=args.precision)
        if args.dry_run:
            _dry_run(recipe, args.train_dir)
            return
        from pyserini_hybrid.train._trainer import train

        result = train(recipe, train_dir=args.train_dir, resume=args.resume, device=args.device,
                       progress=not args.quiet, keep_checkpoints=args.keep_checkpoints,
                       batch_log=args.batch_log)
    except KeyboardInterrupt:
        from pyserini_hybrid.train._trainer import checkpoint_dir, last_checkpoint

        last = last_checkpoint(checkpoint_dir(recipe.output_dir)) if recipe is not None else None
        print(f"interrupted{f'; last checkpoint {last}' if last else ''}: rerun with --resume to continue",
              file=sys.stderr)
        sys.exit(130)
    except (ValueError, OSError, TrainError) as exc:  # our errors (ValueError subclasses mostly): one line
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(2)
    if not result.completed:
        print(f"stopped at step {result.global_step} of {recipe.max_steps}; rerun with --resume to continue",
              file=sys.stderr)
        sys.exit(1)
    print(f"{result.output}: {result.global_step} steps, {result.pairs_per_second:.2f} pairs/s"
          f"{' (early stopped)' if result.early_stopped else ''}")


if __name__ == '__main__':
    main()
