"""Chat-export importers, one module per kind; see `base.py` for the contract.

Importers are discovered: any module here defining a class with a `kind` attribute and a `parse`
method is registered under that kind, so adding a format is adding a file.
"""
from __future__ import annotations

import importlib
import pkgutil

from trainer.importers.base import Importer, ImportFormatError, ImportOptions, ParseResult, Problem, RawMessage

__all__ = ["Importer", "ImportFormatError", "ImportOptions", "ParseResult", "Problem", "RawMessage", "importers", "get_importer", "post_kinds"]


def importers() -> dict[str, type]:
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and isinstance(getattr(obj, "kind", None), str) and callable(getattr(obj, "parse", None)):
                if obj.__module__ == module.__name__:
                    found[obj.kind] = obj
    return dict(sorted(found.items()))


def post_kinds() -> frozenset[str]:
    """Kinds whose exports are the owner's own posts (importers declaring `posts = True`)."""
    return frozenset(kind for kind, cls in importers().items() if getattr(cls, "posts", False))


def get_importer(kind: str) -> Importer:
    table = importers()
    if kind not in table:
        raise ImportFormatError(f"unknown import kind {kind!r}; expected one of: {', '.join(table)}")
    return table[kind]()
