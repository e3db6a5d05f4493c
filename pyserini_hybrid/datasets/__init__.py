"""Collections (any ir_datasets id, a Pyserini JsonCollection + topics + qrels, LAReQA) and LAReQA
XQuAD-R / MLQA-R: parsing, settings, pinned downloads and ir_datasets registration.

A new dataset: an adapter in :mod:`._collection` returning a :class:`Collection` (docs, queries,
qrels, settings); :func:`load_collection` is where ids and paths are dispatched.

Every Mono, Cross and Multi setting is an ir_datasets id (``lareqa/xquad-r``, ``lareqa/xquad-r/en``,
``lareqa/xquad-r/en-de``, likewise ``lareqa/mlqa-r...``)::

    import pyserini_hybrid, ir_datasets
    ds = ir_datasets.load('lareqa/xquad-r/en-de')
    ds.queries_iter(); ds.docs_iter(); ds.qrels_iter(); ds.docs_store()

For bulk work use the pool directly: ``load_pool('xquad-r')`` parses each file once per process.
Data comes from ``$PYSERINI_HYBRID_DATA/{collection}/{lang}.json`` or from the pinned downloads
(see :mod:`pyserini_hybrid.datasets._download`); every file is md5-checked.
"""
from pyserini_hybrid.datasets._collection import (COLLECTION_KIND, Collection, Doc, LareqaCollection, Query, from_ir_datasets,
                                                 from_json_collection, from_lareqa, is_lareqa_id, load_collection,
                                                 read_json_collection, read_topics)
from pyserini_hybrid.datasets._download import collection_files, is_available
from pyserini_hybrid.datasets._export import default_export_dir, export_setting
from pyserini_hybrid.datasets._ids import (COLLECTIONS, Setting, dataset_id_from_run_filename, list_settings,
                                           parse_dataset_id, run_filename)
from pyserini_hybrid.datasets._errors import CollectionError
from pyserini_hybrid.datasets._lareqa import (LareqaDataError, LareqaDoc, LareqaQuery, Pool, clear_cache,
                                              load_pool, parse_file)
from pyserini_hybrid.datasets._ntrex import (VALIDATION_COLLECTION, NtrexError, default_train_dir,
                                             is_validation_document, load_validation_pool, validation_settings)
from pyserini_hybrid.datasets._registry import register

__all__ = ['COLLECTIONS', 'COLLECTION_KIND', 'Collection', 'CollectionError', 'Doc', 'LareqaCollection', 'Query', 'from_ir_datasets',
           'from_json_collection', 'from_lareqa', 'is_lareqa_id', 'load_collection', 'read_json_collection', 'read_topics', 'LareqaDataError', 'LareqaDoc', 'LareqaQuery', 'NtrexError', 'Pool', 'VALIDATION_COLLECTION', 'Setting', 'clear_cache',
           'collection_files', 'dataset_id_from_run_filename', 'default_export_dir', 'export_setting', 'is_available',
           'default_train_dir', 'is_validation_document', 'list_settings', 'load_pool', 'load_validation_pool', 'parse_dataset_id', 'parse_file', 'register', 'run_filename', 'validation_settings']
