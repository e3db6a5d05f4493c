"""LAReQA datasets from the command line.

Usage::

    python -m pyserini_hybrid.datasets list [--collection xquad-r] [--no-counts]
    python -m pyserini_hybrid.datasets export lareqa/xquad-r/en-de [--output-dir DIR]
    # any ir_datasets command, with the lareqa/* ids registered:
    python -m pyserini_hybrid.datasets export lareqa/xquad-r/en queries --format tsv
    python -m pyserini_hybrid.datasets ir_datasets lookup lareqa/xquad-r/en --ids en_0_0

``export ID`` writes topics.tsv, qrels.txt and corpus.jsonl (default: ``topics/{id with . for /}``).
``export ID docs|queries|qrels ...`` and every other ir_datasets command go to ir_datasets' own CLI.
"""
from __future__ import annotations

import argparse
import sys

IRDS_ENTITIES = ('docs', 'queries', 'qrels', 'scoreddocs', 'docpairs', 'qlogs')
IRDS_COMMANDS = ('doc_fifos', 'lookup', 'build_download_cache', 'clean', 'generate_metadata')


def _ir_datasets(argv: list[str]) -> None:
    import ir_datasets

    from pyserini_hybrid.datasets import register

    register()
    ir_datasets.main(argv)


def _list(args: argparse.Namespace) -> None:
    from pyserini_hybrid.datasets import COLLECTIONS, list_settings, load_pool

    collections = [args.collection] if args.collection else list(COLLECTIONS)
    print('dataset_id\tqueries\tdocs\tqrels')
    for collection in collections:
        pool = None
        if not args.no_counts:
            try:  # list never downloads: counts only for data already at hand
                pool = load_pool(collection, download=False)
            except ValueError as exc:
                print(f"note: {collection}: no counts ({exc})", file=sys.stderr)
        for setting in list_settings(collection):
            if pool is None:
                print(f'{setting.dataset_id}\t-\t-\t-')
                continue
            qrels = pool.qrels_for(setting)
            print(f'{setting.dataset_id}\t{len(pool.query_indices(setting))}\t{len(pool.doc_indices(setting))}\t'
                  f'{sum(len(d) for d in qrels.values())}')


def _export(args: argparse.Namespace) -> None:
    from pyserini_hybrid.datasets import export_setting

    out = export_setting(args.dataset, args.output_dir)
    print(f'wrote {out}/topics.tsv, qrels.txt, corpus.jsonl', file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m pyserini_hybrid.datasets', description=__doc__.split('\n\n')[0],
        epilog='Other ir_datasets commands (and export ID docs|queries|qrels) are passed to ir_datasets.')
    sub = parser.add_subparsers(dest='command', required=True)
    p_list = sub.add_parser('list', help='every lareqa id with its query, doc and qrel counts')
    p_list.add_argument('--collection', choices=['xquad-r', 'mlqa-r'], help='only this collection')
    p_list.add_argument('--no-counts', action='store_true', help='ids only; do not read the data')
    p_list.set_defaults(func=_list)
    p_export = sub.add_parser('export', help='write topics.tsv, qrels.txt, corpus.jsonl for one id')
    p_export.add_argument('dataset', metavar='ID', help='e.g. lareqa/xquad-r/en-de')
    p_export.add_argument('--output-dir', default=None,
                          help='output directory (default: topics/{ID with . for /})')
    p_export.set_defaults(func=_export)
    sub.add_parser('ir_datasets', help='run an ir_datasets command with the lareqa ids registered')
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    import pyserini_hybrid  # noqa: F401  (Java set-up and dataset registration, as every entry point)

    from pyserini_hybrid.datasets import LareqaDataError

    if argv and (argv[0] in IRDS_COMMANDS or argv[0] == 'ir_datasets'
                 or (argv[0] == 'export' and len(argv) > 2 and argv[2] in IRDS_ENTITIES)):
        passthrough = argv[1:] if argv[0] == 'ir_datasets' else argv
        try:
            _ir_datasets(passthrough)
        except (LareqaDataError, OSError) as exc:
            print(f'error: {exc}', file=sys.stderr)
            sys.exit(2)
        return
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as exc:  # LareqaDataError is a ValueError: one line, no traceback
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(2)


if __name__ == '__main__':
    main()
