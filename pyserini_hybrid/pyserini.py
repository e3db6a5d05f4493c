"""Run any stock Pyserini CLI with Java set up for this machine.

Usage::

    python -m pyserini_hybrid.pyserini pyserini.index.lucene -collection JsonCollection ...
    python -m pyserini_hybrid.pyserini pyserini.search.lucene --index DIR --topics topics.tsv ...
    python -m pyserini_hybrid.pyserini pyserini.eval.trec_eval -m map qrels.txt run.trec
"""
from __future__ import annotations

import runpy
import sys

from pyserini_hybrid._java import setup_java


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__.strip())
        sys.exit(0 if argv else 2)
    module = argv[0]
    if not (module == 'pyserini' or module.startswith('pyserini.')):
        sys.exit(f"error: expected a pyserini module such as pyserini.search.lucene, got {module!r}")
    setup_java()
    sys.argv = [module] + argv[1:]
    runpy.run_module(module, run_name='__main__', alter_sys=True)


if __name__ == '__main__':
    main()
