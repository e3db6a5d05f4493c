"""Encoder tools.

Fit (or refit) an encoder's language-bias statistics and save them beside the model::

    python -m pyserini_hybrid.encoders fit-bias --encoder me5-small-offline
    python -m pyserini_hybrid.encoders fit-bias --encoder models/me5-small-hybrid --source docs --dataset lareqa/xquad-r

``ntrex`` (default) takes 300 NTREX news sentences per language from the training side (never the
validation documents); ``docs`` takes 300 documents per language of a collection (no queries, no
labels). Search and eval fit the same statistics on first use; this command does it ahead of time.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    import pyserini_hybrid  # noqa: F401
    from pyserini_hybrid.encoders import (BIAS_SOURCES, DEFAULT_ENCODER, PRECISIONS, Encoder, EncoderError,
                                          bias_stats_for)

    parser = argparse.ArgumentParser(prog='python -m pyserini_hybrid.encoders', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.split('\n')[1:]))
    sub = parser.add_subparsers(dest='command', required=True)
    fit = sub.add_parser('fit-bias', help='fit and save language-bias statistics')
    fit.add_argument('--encoder', default=DEFAULT_ENCODER)
    fit.add_argument('--source', default='ntrex', choices=BIAS_SOURCES)
    fit.add_argument('--dataset', default=None, help="collection whose documents are the text (--source docs)")
    fit.add_argument('--languages', nargs='+', default=None, help='languages to fit (default: all available)')
    fit.add_argument('--precision', default='auto', choices=PRECISIONS,
                     help='the precision search and eval will use (the statistics are per precision)')
    fit.add_argument('--train-dir', default=None, help='folder holding ntrex/ (default $PYSERINI_HYBRID_TRAIN_DATA)')
    args = parser.parse_args(argv)
    try:
        pool = None
        if args.source == 'docs':
            if not args.dataset:
                raise EncoderError("--source docs needs --dataset (the collection whose documents are indexed)")
            from pyserini_hybrid.datasets import load_pool, parse_dataset_id
            pool = load_pool(parse_dataset_id(args.dataset).collection)
        encoder = Encoder(args.encoder, precision=args.precision)
        stats = bias_stats_for(encoder, args.source, langs=args.languages, pool=pool, train_dir=args.train_dir,
                               refit=True, log=lambda line: print(line, file=sys.stderr))
    except (ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    from pyserini_hybrid.encoders import bias_stats_path
    print(bias_stats_path(encoder, stats.meta['source']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
