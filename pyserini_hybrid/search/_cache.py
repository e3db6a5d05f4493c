"""The embedding cache, re-exported: it lives in :mod:`pyserini_hybrid.encoders._cache` (eval and
search both embed through it, and eval must not import search)."""
from pyserini_hybrid.encoders._cache import (CHUNK_TEXTS, ROLES, cache_root, embed_pool, embed_texts,  # noqa: F401
                                             embedding_cache_dir, text_keys)

__all__ = ['ROLES', 'cache_root', 'embedding_cache_dir', 'embed_texts', 'embed_pool']
