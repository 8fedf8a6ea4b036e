"""Path safety for every command that writes: results stay inside their output folder and never touch inputs.

One helper for all writers (convert, predict, viz, export, ...), so the rules hold everywhere at once:
- a relative name read from a file (a COCO ``file_name``) can never climb out of the destination;
- an output folder that already holds results is refused unless ``overwrite`` is asked, so stale files never mix
  with new ones;
- an output folder that is, or lies inside, an input folder is refused (its files could be overwritten);
- two inputs never map to one output name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePath

__all__ = ["confined_path", "prepare_output_dir", "relative_parts", "unique_output_stems"]


def relative_parts(relative: str | Path, what: str) -> list[str]:
    """The parts of a relative path read from a file, refusing (ValueError naming `what`) an absolute or drive path,
    a '..' part, an empty name or a NUL byte; purely textual, so a name can be checked before any folder exists."""
    if not isinstance(relative, (str, PurePath)):
        raise TypeError(f"{what}: expected a relative path string, got {type(relative).__name__} {relative!r}")
    text = str(relative)
    if text.strip() == "":
        raise ValueError(f"{what}: empty path")
    if "\x00" in text:
        raise ValueError(f"{what}: path {text!r} contains a NUL byte")
    # Both separators count: a name written on Windows ('..\\x.png') must not climb out either.
    parts = text.replace("\\", "/").split("/")
    drive = len(text) >= 2 and text[0].isalpha() and text[1] == ":" and (len(text) == 2 or text[2] in "/\\")
    if os.path.isabs(text) or text.startswith(("/", "\\")) or drive:
        raise ValueError(f"{what}: path {text!r} is absolute; only relative paths are allowed")
    if ".." in parts:
        raise ValueError(f"{what}: path {text!r} holds a '..' part")
    kept = [p for p in parts if p not in ("", ".")]
    if not kept:
        raise ValueError(f"{what}: path {text!r} names no file")
    return kept


def confined_path(root: Path, relative: str | Path, what: str) -> Path:
    """root / relative, refusing (ValueError naming `what` and the path) an absolute path, a '..' part, or any
    result that resolves outside root (symlinks included)."""
    root = Path(root)
    candidate = root.joinpath(*relative_parts(relative, what))
    root_resolved = root.resolve()
    resolved = candidate.resolve()
    if root_resolved not in resolved.parents:
        raise ValueError(f"{what}: path {str(relative)!r} resolves to {resolved}, outside {root}")
    return candidate


def _is_within(path: Path, folder: Path) -> bool:
    """Whether resolved ``path`` equals or lies inside resolved ``folder``."""
    return path == folder or folder in path.parents


def prepare_output_dir(out: Path, inputs: Sequence[Path] = (), overwrite: bool = False) -> Path:
    """Create `out` for a command's results; ValueError when `out` is an existing file, when it already holds
    files and overwrite is False (no stale results mixed with new ones), or when it is an input file or lies
    inside / equals an input folder whose files could be overwritten. With overwrite=True the earlier contents
    the command would write are removed first (never anything outside `out`)."""
    out = Path(out)
    if out.is_symlink() and not out.is_dir():
        raise ValueError(f"{out}: the output path is a link to {os.readlink(out)}, not a folder")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: the output path is an existing file, not a folder")
    out_resolved = out.resolve()
    for item in inputs:
        item = Path(item)
        if not item.exists():
            continue
        item_resolved = item.resolve()
        if item.is_dir():
            if _is_within(out_resolved, item_resolved):
                raise ValueError(
                    f"{out}: the output folder is inside the input folder {item}; its files could be overwritten"
                )
            if out.exists() and _is_within(item_resolved, out_resolved) and overwrite:
                raise ValueError(f"{out}: --overwrite would delete the input folder {item} that lies inside it")
        else:
            if item_resolved == out_resolved:
                raise ValueError(f"{out}: the output path is the input file {item}")
            if out.exists() and _is_within(item_resolved, out_resolved) and overwrite:
                raise ValueError(f"{out}: --overwrite would delete the input file {item} that lies inside it")
    if out.is_dir():
        entries = sorted(out.iterdir())
        if entries and not overwrite:
            raise ValueError(
                f"{out}: the output folder already holds {len(entries)} entries (e.g. {entries[0].name}); "
                "choose an empty folder or pass --overwrite"
            )
        for entry in entries:
            # A link is removed as a link: nothing it points to (outside `out`) is ever followed or deleted.
            if entry.is_symlink() or not entry.is_dir():
                entry.unlink()
            else:
                shutil.rmtree(entry)
    out.mkdir(parents=True, exist_ok=True)
    return out


def unique_output_stems(paths: Sequence[Path]) -> list[str]:
    """One output name stem per input path, distinct even when two inputs share a file stem (the shortest
    distinguishing parent folders are joined in), stable across runs."""
    items = [Path(p) for p in paths]
    # Names built from the parts of each path, innermost first: the stem, then its parents in turn.
    chains = [[p.stem, *[part for part in reversed(p.parent.parts) if part not in ("", "/", ".")]] for p in items]
    depth = [1] * len(items)

    def name(i: int) -> str:
        parts = list(reversed(chains[i][: depth[i]]))
        return "__".join(_safe_part(part) for part in parts)

    while True:
        groups: dict[str, list[int]] = {}
        for i in range(len(items)):
            groups.setdefault(name(i), []).append(i)
        clashes = [g for g in groups.values() if len(g) > 1]
        if not clashes:
            break
        grew = False
        for group in clashes:
            for i in group:
                if depth[i] < len(chains[i]):
                    depth[i] += 1
                    grew = True
        if not grew:
            break
    names = [name(i) for i in range(len(items))]
    # Inputs that stay equal after every folder is joined in (the same file given twice, or 'a.png' and 'a.tif')
    # get their extension, then an ordinal, so the rule is still one output per input.
    seen: dict[str, int] = {}
    for i, stem in enumerate(names):
        if names.count(stem) > 1:
            suffix = items[i].suffix.lstrip(".")
            candidate = f"{stem}__{_safe_part(suffix)}" if suffix else stem
            seen[candidate] = seen.get(candidate, 0) + 1
            names[i] = candidate if seen[candidate] == 1 else f"{candidate}__{seen[candidate]}"
    final_seen: set[str] = set()
    for i, stem in enumerate(names):
        candidate, k = stem, 2
        while candidate in final_seen:
            candidate, k = f"{stem}__{k}", k + 1
        final_seen.add(candidate)
        names[i] = candidate
    return names


def _safe_part(part: str) -> str:
    """A path part usable inside a file name: separators and drive colons replaced."""
    return part.replace("/", "_").replace("\\", "_").replace(":", "_") or "_"
