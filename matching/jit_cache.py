"""numba's on-disk cache, keyed on every source a cached kernel compiles in.

numba stamps a cached kernel with the hash of the one file that defines it. A kernel that
inlines kernels or freezes constants from other files (the engine inlines risk and
matching; the journal inlines crc32c; every kernel freezes ``matching.codes``) would then
load a stale compiled version after an edit to any of those. Importing this module puts
``SourceClosureLocator`` at the front of numba's locators: a kernel of ours is cached in a
directory named by a hash of its file and of every project file that file imports,
followed transitively, so an edit to any of them gives a fresh directory.

The imports are read from the files' source (top-level import statements, not function
bodies) rather than from the modules' globals: ``from matching.codes import E_SEQ`` leaves
an int in the globals and no trace of ``codes.py``, yet numba compiles the value in. The
hash does not depend on what happens to be imported already, so every process computes the
same one. Files under the standard library or site-packages are not ours and not followed.

Import this module before any ``@njit(cache=True)`` of ours is decorated (each kernel
module imports it first). ``NUMBA_CACHE_DIR`` is honoured: the directories are made there.
It imports nothing of ours: ``matching`` is the bottom package.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import sysconfig
from collections.abc import Iterator
from typing import Any

from numba.core import config
from numba.core.caching import CacheImpl, _CacheLocator, _SourceFileBackedLocatorMixin
from numba.misc.appdirs import AppDirs

_NOT_OURS = tuple(
    os.path.realpath(p) + os.sep
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
)


def is_ours(path: str) -> bool:
    """A project source file: Python source outside the standard library and any
    site-packages (third-party code changes only with its version)."""
    real = os.path.realpath(path)
    if not real.endswith(".py") or real.startswith(_NOT_OURS):
        return False
    parts = real.split(os.sep)
    return "site-packages" not in parts and "dist-packages" not in parts


Import = tuple[str, int, tuple[str, ...]]  # (module, level, names); names () for ``import m``


@functools.cache
def _parse(path: str, mtime_ns: int, size: int) -> tuple[bytes, tuple[Import, ...]]:
    """The file's content hash and its top-level imports (memoised until it changes)."""
    with open(path, "rb") as f:
        source = f.read()
    imports: list[Import] = []
    for node in _top_level(ast.parse(source, path).body):
        if isinstance(node, ast.Import):
            imports += [(a.name, 0, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append((node.module or "", node.level, tuple(a.name for a in node.names)))
    return hashlib.sha256(source).digest(), tuple(imports)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: the module body and its if/try/with blocks, not functions
    or classes."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.With | ast.For | ast.While):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse if not isinstance(node, ast.With) else [])
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body)
            for handler in node.handlers:
                yield from _top_level(handler.body)
            yield from _top_level(node.orelse)
            yield from _top_level(node.finalbody)


def _file_of(module: str) -> str | None:
    """The source file of ``module``, found without running it (its parent packages are
    imported already when one of our modules imports from them)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError, AttributeError):
        return None
    origin = None if spec is None else spec.origin
    return origin if origin and os.path.isfile(origin) else None


def _imported(module: str, path: str, imp: Import) -> Iterator[tuple[str, str]]:
    """The modules of ours one import statement of ``module`` (file ``path``) reads from."""
    name, level, names = imp
    if level:
        package = module if os.path.basename(path) == "__init__.py" else module.rpartition(".")[0]
        try:
            name = importlib.util.resolve_name("." * level + name, package)
        except (ImportError, ValueError):
            return
    base = _file_of(name)
    if base is None or not is_ours(base):
        return
    if not names:  # import a.b: names are read through the module itself
        yield name, base
        return
    for n in names:
        sub = _file_of(f"{name}.{n}") if n != "*" else None
        if sub is not None:  # from a import b, b a submodule
            yield f"{name}.{n}", sub
        else:  # from a import x: x from a's namespace
            yield name, base


def source_closure(module: str, path: str) -> dict[str, str]:
    """Module name -> file of ``module`` and every module of ours it imports, transitively."""
    seen = {module: path}
    todo = [(module, path)]
    while todo:
        mod, file = todo.pop()
        st = os.stat(file)
        for imp in _parse(file, st.st_mtime_ns, st.st_size)[1]:
            for name, dep in _imported(mod, file, imp):
                if name not in seen:
                    seen[name] = dep
                    todo.append((name, dep))
    return seen


def closure_digest(module: str, path: str) -> str:
    """A hash of the content of every file in ``source_closure`` (names, not paths: the
    directory it names sits beside the sources already)."""
    h = hashlib.sha256()
    for name, file in sorted(source_closure(module, path).items()):
        st = os.stat(file)
        h.update(name.encode() + b"\0" + _parse(file, st.st_mtime_ns, st.st_size)[0])
    return h.hexdigest()


class SourceClosureLocator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """Caches a kernel of ours in ``<cache dir>/numba-<closure digest>``: beside the source
    (``__pycache__``), under ``NUMBA_CACHE_DIR`` when set, else in the user's cache."""

    def __init__(self, py_func: Any, py_file: str, base: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        digest = closure_digest(py_func.__module__, py_file)
        self._cache_path = os.path.join(base, f"numba-{digest[:20]}")

    def get_cache_path(self) -> str:
        return self._cache_path

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> SourceClosureLocator | None:
        if not os.path.exists(py_file) or not is_ours(py_file):
            return None  # not ours: numba's own locators
        subpath = cls.get_suitable_cache_subpath(py_file)
        cache_dir = getattr(config, "CACHE_DIR", "")  # NUMBA_CACHE_DIR (set at numba's start)
        if cache_dir:
            bases = [os.path.join(cache_dir, subpath)]
        else:
            user = AppDirs(appname="numba", appauthor=False).user_cache_dir
            bases = [
                os.path.join(os.path.dirname(py_file), "__pycache__"),
                os.path.join(user, subpath),
            ]
        for base in bases:
            self = cls(py_func, py_file, base)
            try:
                self.ensure_cache_path()
            except OSError:
                continue  # not writable: the next place
            return self
        return None


def register() -> None:
    """Put ``SourceClosureLocator`` first among numba's locators (once)."""
    locators: list[Any] = CacheImpl._locator_classes
    if SourceClosureLocator not in locators:
        locators.insert(0, SourceClosureLocator)


register()
