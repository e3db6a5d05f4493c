"""Idempotent ir_datasets registration that keeps ``import pyserini_hybrid`` cheap.

Importing ir_datasets costs ~0.6 s, so :func:`register` does not import it: when ir_datasets is
already imported the ids are registered at once; otherwise a one-shot import hook registers them
right after the first ``import ir_datasets`` anywhere in the process. Either way the first
``ir_datasets.load('lareqa/...')`` finds every id.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading

__all__ = ['register']

_LOCK = threading.RLock()
_state = {'registered': False, 'hook': None}


def _register_now() -> None:
    with _LOCK:
        if _state['registered']:
            return
        from pyserini_hybrid.datasets._irds import register_all

        register_all()
        _state['registered'] = True


class _Loader(importlib.abc.Loader):
    """Wraps ir_datasets' own loader: run it, then register our ids."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register_now()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        return getattr(self._loader, name)


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != 'ir_datasets':
            return None
        _remove_hook()  # one shot; also keeps find_spec below from finding us again
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


def _remove_hook() -> None:
    hook = _state['hook']
    if hook is not None and hook in sys.meta_path:
        sys.meta_path.remove(hook)
    _state['hook'] = None


def register() -> None:
    """Register every ``lareqa/...`` id with ir_datasets (idempotent, no parsing, no network).

    Registers at once when ir_datasets is imported already, else right after it is first imported.
    """
    with _LOCK:
        if _state['registered']:
            return
        if 'ir_datasets' in sys.modules and hasattr(sys.modules['ir_datasets'], 'registry'):
            _remove_hook()
            _register_now()
        elif _state['hook'] is None:
            _state['hook'] = _Hook()
            sys.meta_path.insert(0, _state['hook'])
