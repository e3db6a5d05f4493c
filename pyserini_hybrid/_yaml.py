"""Strict YAML shared by the training recipes and the experiment files (private).

Values are composed with the line of every key, checked against dataclass type hints, and every
problem is one line ``file:line: message`` raised as the caller's own exception class.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable, Mapping

TYPE_WORDS = {int: 'an integer', float: 'a number', bool: 'true or false', str: 'a string'}

Error = type[Exception]


def compose(text: str, where: str, error: Error, what: str) -> tuple[dict, dict[str, int]]:
    """Parse YAML text that must be a mapping.

    Parameters
    ----------
    text : str
        The YAML text.
    where : str
        Names the text in messages (usually its path).
    error : type
        Exception class raised for every problem.
    what : str
        What the file is, for messages (``'recipe'``, ``'experiment file'``).

    Returns
    -------
    data : dict
        The values (mappings as dicts, sequences as lists).
    lines : dict of str to int
        1-based line of each key path (``'a.b'``, ``'a[0]'``; ``''`` is the document).
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        line = f':{mark.line + 1}' if mark is not None else ''
        problem = getattr(exc, 'problem', None) or str(exc).splitlines()[0]
        raise error(f"{where}{line}: invalid YAML ({problem})") from None
    if node is None:
        raise error(f"{where}: empty {what}")
    lines: dict[str, int] = {}
    data = _to_python(node, '', lines, where, error)
    if not isinstance(data, dict):
        article = 'an' if what[0] in 'aeiou' else 'a'
        raise error(f"{where}:{lines['']}: {article} {what} is a mapping of keys to values")
    return data, lines


def _to_python(node: Any, path: str, lines: dict[str, int], where: str, error: Error) -> Any:
    """yaml node -> Python values, recording each key path's line (duplicate keys are errors)."""
    import yaml

    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value
            sub = f'{path}.{key}' if path else str(key)
            if key in out:
                raise error(f"{where}:{key_node.start_mark.line + 1}: duplicate key '{sub}'")
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, sub, lines, where, error)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, f'{path}[{i}]', lines, where, error) for i, item in enumerate(node.value)]
    return yaml.SafeLoader('').construct_object(node, deep=True)


def at(where: str, lines: Mapping[str, int], key: str) -> str:
    """``file:line`` of ``key``, else of its nearest enclosing key that has a line, else ``where``."""
    while True:
        line = lines.get(key)
        if line:
            return f'{where}:{line}'
        if not key:
            return where
        key = key.rsplit('.', 1)[0] if '.' in key else (key.rsplit('[', 1)[0] if '[' in key else '')


def describe(value: Any) -> str:
    """``'str 'x''`` for a scalar, the bare type name for a mapping or a list."""
    return type(value).__name__ if isinstance(value, (dict, list)) else f'{type(value).__name__} {value!r}'


def coerce(hint: Any, value: Any, loc: str, label: str, error: Error) -> Any:
    """Check ``value`` against the type ``hint``; return it converted (lists -> tuples, ints -> floats).

    Parameters
    ----------
    hint : type
        ``int``, ``float``, ``bool``, ``str``, ``dict``, ``X | None``, ``tuple[X, ...]`` or a fixed-length
        ``tuple[X, Y]``; any other hint accepts the value as it is.
    value : Any
        The value read.
    loc, label : str
        ``file:line`` and key path named in the message.
    error : type
        Exception class raised for a wrong type.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return coerce([a for a in args if a is not type(None)][0], value, loc, label, error)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise error(f"{loc}: '{label}' must be a list, got {describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], v, loc, f'{label}[{i}]', error) for i, v in enumerate(value))
        if len(value) != len(args):
            raise error(f"{loc}: '{label}' must be a list of {len(args)} items, got {len(value)}")
        return tuple(coerce(a, v, loc, f'{label}[{i}]', error) for i, (a, v) in enumerate(zip(args, value)))
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise error(f"{loc}: '{label}' must be a mapping, got {describe(value)}")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            note = ''
            if isinstance(value, str):
                try:
                    float(value)
                    note = ' (YAML reads 3e-5 as text: write 3.0e-5)'
                except ValueError:
                    pass
            raise error(f"{loc}: '{label}' must be a number, got {describe(value)}{note}")
        return float(value)
    if hint in TYPE_WORDS:
        if isinstance(value, bool) != (hint is bool) or not isinstance(value, hint):
            raise error(f"{loc}: '{label}' must be {TYPE_WORDS[hint]}, got {describe(value)}")
    return value


def build_fields(cls: type, data: dict, prefix: str, where: str, lines: Mapping[str, int], error: Error, *,
           exclude: frozenset[str] = frozenset(), custom: Mapping[str, Callable[[Any], Any]] | None = None) -> dict:
    """Checked keyword arguments for the dataclass ``cls`` from the mapping ``data``.

    Unknown and missing keys are errors; a dataclass-typed field is read from a nested mapping; the
    other fields go through :func:`coerce`.

    Parameters
    ----------
    cls : type
        The dataclass.
    data : dict
        The mapping read at key path ``prefix`` (``''`` at the top, else ending in ``'.'``).
    prefix, where, lines
        Key path prefix, file name and key lines (from :func:`compose`) for messages.
    error : type
        Exception class raised for every problem.
    exclude : frozenset of str
        Fields that are not keys.
    custom : mapping of str to callable, optional
        Top-level fields read by ``custom[name](value)`` instead.
    """
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
    unknown = [k for k in data if k not in known]
    if unknown:
        key = f'{prefix}{unknown[0]}'
        raise error(f"{at(where, lines, key)}: unknown key '{key}' (valid keys: {', '.join(sorted(known))})")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in data.items():
        label = f'{prefix}{name}'
        loc = at(where, lines, label)
        hint = hints[name]
        if custom and name in custom:
            out[name] = custom[name](value)
        elif dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise error(f"{loc}: '{label}' must be a mapping, got {describe(value)}")
            out[name] = hint(**build_fields(hint, value, f'{label}.', where, lines, error))
        else:
            out[name] = coerce(hint, value, loc, label, error)
    missing = [n for n, f in known.items() if n not in out and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise error(f"{at(where, lines, prefix.rstrip('.'))}: missing key '{prefix}{missing[0]}'")
    return out
