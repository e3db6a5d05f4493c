"""Encode a corpus (a JsonCollection folder or any ir_datasets id) into a FAISS index and/or embeddings.

One machine::

    python -m pyserini_hybrid.encode --corpus corpus/ --encoder me5-small-offline --index indexes/corpus

Shards (as pyserini.encode: contiguous slices of the corpus, one per --shard-id), then merge::

    python -m pyserini_hybrid.encode --corpus corpus/ --index indexes/shard0 --shard-id 0 --shard-num 2
    python -m pyserini_hybrid.encode --corpus corpus/ --index indexes/shard1 --shard-id 1 --shard-num 2
    python -m pyserini_hybrid.encode merge --shards indexes/shard0 indexes/shard1 --index indexes/corpus

Vectors go through the embedding cache, so an interrupted run resumes where it stopped.
--processes N encodes through sentence-transformers' multi-process pool (one process per GPU where
there are GPUs, N CPU processes otherwise), each worker running the model at fp32. The index is flat inner product unless --index-type
hnsw or pq; search it with python -m pyserini_hybrid.search --index DIR --topics FILE, or with
pyserini.search.faiss.FaissSearcher(DIR, HybridQueryEncoder(NAME)).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from pyserini_hybrid._io import check_output_path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as every other CLI of the project
        self.exit(2, f"error: {message} (see --help)\n")


def _index_options(p: argparse.ArgumentParser) -> None:
    from pyserini_hybrid.encode import INDEX_TYPES

    p.add_argument('--index-type', default='flat', choices=INDEX_TYPES,
                   help='FAISS index: flat inner product (default, exact), hnsw or pq (approximate)')
    p.add_argument('--hnsw-m', type=int, default=32, help='HNSW neighbours per node (default 32)')
    p.add_argument('--ef-construction', type=int, default=40, help='HNSW efConstruction (default 40)')
    p.add_argument('--pq-m', type=int, default=8, help='PQ sub-quantisers; must divide the dimension (default 8)')
    p.add_argument('--pq-nbits', type=int, default=8, help='PQ bits per sub-quantiser (default 8)')


def build_parser() -> argparse.ArgumentParser:
    from pyserini_hybrid.encoders import BIAS_METHODS, BIAS_SOURCES, DEFAULT_ENCODER, PRECISIONS

    p = _Parser(prog='python -m pyserini_hybrid.encode', description=__doc__.split('\n\n')[0],
                epilog=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--corpus', required=True, metavar='PATH|ID',
                   help='a Pyserini JsonCollection folder (or .jsonl file) or any ir_datasets id')
    p.add_argument('--encoder', default=DEFAULT_ENCODER, metavar='NAME',
                   help=f"registry name or model directory (default {DEFAULT_ENCODER})")
    p.add_argument('--index', default=None, metavar='DIR', help="FAISS index directory (index + docid)")
    p.add_argument('--embeddings', default=None, metavar='FILE',
                   help="embeddings JSONL ({id, contents, vector} per line, as pyserini.encode writes)")
    p.add_argument('--shard-id', type=int, default=0, help='0-based shard to encode (default 0)')
    p.add_argument('--shard-num', type=int, default=1, help='number of shards (default 1)')
    _index_options(p)
    p.add_argument('--batch-size', type=int, default=32, help='encoder batch size (default 32)')
    p.add_argument('--precision', default='auto', choices=PRECISIONS, help='encoder precision (default auto)')
    p.add_argument('--threads', type=int, default=None, help='torch threads')
    p.add_argument('--processes', type=int, default=1,
                   help="encoding processes through sentence-transformers' multi-process pool (default 1: none)")
    p.add_argument('--bias-correction', default='none', metavar='METHOD[:RANK]',
                   help=f"language-bias correction of the document vectors ({', '.join(BIAS_METHODS)}), recorded in "
                        f"the index's bias.json so that search corrects queries alike (default none)")
    p.add_argument('--bias-source', default='ntrex', choices=BIAS_SOURCES,
                   help="text the bias statistics are fitted from (default ntrex)")
    p.add_argument('--language', default=None, metavar='LANG',
                   help="language of documents that name none (the bias correction needs one)")
    p.add_argument('--cache-dir', default=None, metavar='DIR',
                   help='embedding cache (default $PYSERINI_HYBRID_CACHE/embeddings)')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


def build_merge_parser() -> argparse.ArgumentParser:
    p = _Parser(prog='python -m pyserini_hybrid.encode merge',
                description='Merge flat shard indexes (in the order given) into one index.')
    p.add_argument('--shards', nargs='+', required=True, metavar='DIR', help='shard index directories, shard 0 first')
    p.add_argument('--index', required=True, metavar='DIR', help='merged index directory')
    _index_options(p)
    return p


def _check_output(index: str | None, embeddings: str | None) -> None:
    if index is not None:
        if Path(index).exists() and not Path(index).is_dir():
            raise ValueError(f"--index exists and is not a directory: {index}")
        check_output_path(index)
    if embeddings is not None:
        if Path(embeddings).is_dir():
            raise ValueError(f"--embeddings is a directory: {embeddings} (a JSONL file is expected)")
        check_output_path(embeddings)


def _options(args) -> dict:
    return {'hnsw_m': args.hnsw_m, 'ef_construction': args.ef_construction, 'pq_m': args.pq_m,
            'pq_nbits': args.pq_nbits}


def run(args: argparse.Namespace) -> dict[str, Path]:
    """Encode what the parsed command line asks; returns the paths written."""
    from pyserini_hybrid.datasets import load_collection
    from pyserini_hybrid.encode import EncodeError, MultiProcessEncoder, encode_corpus, shard_range
    from pyserini_hybrid.encoders import Encoder, identify_languages, load_bias_correction, parse_bias_method

    if args.index is None and args.embeddings is None:
        raise EncodeError("nothing to write: give --index DIR and/or --embeddings FILE")
    for flag in ('batch_size', 'processes'):
        if getattr(args, flag) <= 0:
            raise EncodeError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    shard_range(1, args.shard_id, args.shard_num)     # bad shard numbers fail before any work
    method, rank = parse_bias_method(args.bias_correction)
    _check_output(args.index, args.embeddings)
    collection = load_collection(args.corpus, lang=args.language)
    precision = args.precision
    if args.processes > 1:
        # int8 (quantised Linears) cannot be sent to sentence-transformers' worker processes, and
        # bf16 autocast is not applied inside them: the workers run the fp32 model.
        if precision in ('int8', 'bf16'):
            raise EncodeError(f"--processes runs the model at fp32 in each worker: use --precision fp32 or auto, "
                              f"not {precision}")
        if precision == 'auto':
            print("encoder precision: fp32 in each of the --processes workers (auto)", file=sys.stderr)
            precision = 'fp32'
    encoder = Encoder(args.encoder, batch_size=args.batch_size, precision=precision, threads=args.threads)
    print(f"encoder precision: {encoder.precision} (asked: {args.precision}, device {encoder.device})", file=sys.stderr)
    fix = load_bias_correction(encoder, method, rank=rank, source=args.bias_source, pool=collection,
                               log=lambda line: print(line, file=sys.stderr))
    if fix.needs_doc_langs and not all(d.lang for d in collection.docs):
        found = iter(identify_languages([d.text for d in collection.docs if not d.lang], fix.stats.langs))
        collection.docs = [d if d.lang else d._replace(lang=next(found)) for d in collection.docs]
    kwargs = dict(index_dir=args.index, embeddings=args.embeddings, shard_id=args.shard_id, shard_num=args.shard_num,
                  index_type=args.index_type, correction=fix, cache_dir=args.cache_dir, show_progress=not args.quiet,
                  **_options(args))
    if args.processes > 1:
        with MultiProcessEncoder(encoder, args.processes) as pooled:
            return encode_corpus(collection, pooled, **kwargs)
    return encode_corpus(collection, encoder, **kwargs)


def _errors(fn, args) -> int:
    from pyserini_hybrid._cli import run_reporting_errors

    code, written = run_reporting_errors(fn, args)
    if code:
        return code
    paths = written.values() if isinstance(written, dict) else [written]
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import pyserini_hybrid  # noqa: F401  (Java set-up before anything imports pyserini)
    if argv[:1] == ['merge']:
        from pyserini_hybrid.encode import merge_shards

        args = build_merge_parser().parse_args(argv[1:])

        def merge(a):
            _check_output(a.index, None)
            return merge_shards(a.shards, a.index, a.index_type, **_options(a))
        return _errors(merge, args)
    return _errors(run, build_parser().parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
