"""What code a workflow step runs, as a hash: the rerun trigger for library edits.

A step module's *closure* is every ``ptycho_core`` source file that importing
and running it can load: the module, the ``ptycho_core`` modules it imports
anywhere in its source (at the top or inside a function, as the heavy imports
are), transitively, the ``__init__.py`` of every package on the way, and the
configuration schema when ``ptycho_core.config`` is among them. The closure is
read from the sources (Python's ``ast``), without importing anything, so the
Snakefile can compute it for every rule when it is parsed.

:func:`code_hash` is the sha256 of the closure's files (package-relative paths
and bytes). The rules take it as a param, so editing a library module reruns
exactly the jobs whose steps can load it; a comment or a module they never
import reruns nothing. The workflow adds each rule's adapter script by content,
and its profiles turn off Snakemake's own code trigger, which compares the
script's modification time with the outputs' (a fresh clone would rerun
everything). Imports by name at run time (``importlib``) are not
followed; the library has none (``tests/test_code_hash.py`` checks).
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "ptycho_core"
#: Data files read by a module at run time: (module, file relative to the package).
DATA_FILES = {f"{PACKAGE}.config": ("config.schema.yaml",)}


def _package_root() -> Path:
    return Path(__file__).resolve().parent


def _source(module: str, root: Path) -> Path | None:
    """The file of a ``ptycho_core`` module (a package's ``__init__.py``), or None when there is none."""
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _imported(path: Path, module: str) -> set[str]:
    """Every ``ptycho_core`` module the source at ``path`` names in an import statement."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import submodule`
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def code_closure(*modules: str, root: Path | None = None, _parsed: dict | None = None) -> list[Path]:
    """The sorted source and data files that importing and running ``modules`` (``ptycho_core`` module names)
    can load."""
    root = _package_root() if root is None else Path(root)
    parsed = {} if _parsed is None else _parsed  # (file, module) -> its imports, shared by code_hashes
    for module in modules:
        if _source(module, root) is None:
            raise ValueError(f"{module!r} is not a module of {root}")
    seen: set[str] = set()
    files: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        todo.extend(".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1))
        src = _source(name, root)
        if src is None:
            continue  # a name imported from a module, not a module itself
        files.add(src)
        files.update(root / f for f in DATA_FILES.get(name, ()))
        if (src, name) not in parsed:
            parsed[src, name] = _imported(src, name)
        todo.extend(parsed[src, name])
    return sorted(files)


def code_hash(*modules: str, root: Path | None = None, files=(), _parsed: dict | None = None) -> str:
    """sha256 of the files of ``code_closure(*modules)`` (paths relative to the package, and bytes), then of ``files``.

    ``files`` are further sources by content (a rule's adapter script), named
    by their file name only, so the hash does not depend on where they lie.
    """
    root = _package_root() if root is None else Path(root)
    h = hashlib.sha256()
    named = [(p.relative_to(root).as_posix(), p) for p in code_closure(*modules, root=root, _parsed=_parsed)]
    named += [(f"<file>/{Path(f).name}", Path(f)) for f in files]
    for rel, path in named:
        rel, data = rel.encode(), path.read_bytes()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def code_hashes(groups: dict, root: Path | None = None) -> dict[str, str]:
    """``code_hash`` of each named group, parsing each source file once.

    A group is a tuple of module names, or a mapping ``{"modules": (...), "files": (...)}``.
    """
    parsed: dict = {}
    out = {}
    for name, group in groups.items():
        modules, files = (group["modules"], group.get("files", ())) if isinstance(group, dict) else (group, ())
        out[name] = code_hash(*modules, root=root, files=files, _parsed=parsed)
    return out
