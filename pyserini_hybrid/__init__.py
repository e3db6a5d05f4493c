"""pyserini-hybrid: multilingual dense retrieval on top of Pyserini.

Importing the package sets up Java for Pyserini (see :mod:`pyserini_hybrid._java`) and registers
the LAReQA datasets with ir_datasets. Neither starts the JVM nor touches the network.
"""
__version__ = '0.1.0'

from pyserini_hybrid._java import JavaSetupError, setup_java

setup_java()

from pyserini_hybrid.datasets import register as _register_datasets; _register_datasets()  # noqa: E702

__all__ = ['JavaSetupError', 'setup_java', '__version__']
