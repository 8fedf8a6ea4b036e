"""Mutation score of the test suite, per package: plant one small bug at a time and see whether a test fails.

A benchmark, not a gate. Each mutant is one operator change made with :mod:`ast` (``<`` -> ``<=``, ``+`` -> ``-``,
``min`` -> ``max``, ``and`` -> ``or``, a number off by one, ``True`` -> ``False``, a dropped unary minus or ``not``)
in one file of the package, written into a private copy of the repository (never into the working tree), and the
package's tests are run on that copy with ``pytest -x``. A mutant is *killed* when a test fails or errors (or the
run times out) and *survives* when every test passes. The score is killed / (killed + survived).

The copy holds the package, the tests, the configs, the sample images of ``examples/`` and the runtime distribution
(the shipped weights travel inside the package), so the shipped-weights, tiling and Ray tests run on it. Each run
has its own copy, its own pytest temporary folder and its own Ray folder, so two runs (two packages, two people)
can go at the same time without meeting. One pytest process per run (``-n 0``), ``OMP_NUM_THREADS=1``. The json
report lists, for each killed mutant, the test that caught it (``killed_by``).

A few tests are too slow to run against every mutant (the two local-Ray-cluster tests of ``tests/inference``, about
a minute together on one core): ``GATED_TESTS`` runs them on the unmutated copy and against the mutants of the file
they exercise (``ray_batch.py``) only; every other test runs against every mutant. ``--all-tests`` lifts this.

Why a small runner of our own instead of mutmut or cosmic-ray: mutmut 2 rewrites the source files in place (the
working tree is shared, so a mutant would leak into other runs) and mutmut 3 rewrites every function of the
package into trampolines, which breaks ``torch.jit``/``typing`` introspection used here; cosmic-ray needs a session
database and a config per package. A runner on a copy, with a fixed random sample (``--seed``) so that a "before"
and an "after" run try the same mutants, was simpler to keep honest.

Examples::

    python benchmarks/mutation.py --package ops --max-mutants 40
    python benchmarks/mutation.py --package eval --package ops --max-mutants 40 --report mutation_runs/eval_ops.json
    python benchmarks/mutation.py --package yolact --list          # the mutants it would try, without running
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# package -> (source folder, test paths run against each of its mutants)
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ops": ("instseg/ops", ("tests/ops",)),
    "eval": ("instseg/eval", ("tests/eval",)),
    "engine": ("instseg/engine", ("tests/engine",)),
    "inference": ("instseg/inference", ("tests/inference",)),
    "yolact": ("instseg/methods/yolact", ("tests/methods/test_yolact.py", "tests/methods/test_yolact_oracle.py")),
}

# tests too slow to run against every mutant of their package (tens of seconds each on one core: a local Ray
# cluster): they run on the unmutated copy and against the mutants of the files listed, and are deselected for the
# package's other mutants (whose own tests run as always). ``--all-tests`` runs them against every mutant.
GATED_TESTS: dict[str, dict[str, tuple[str, ...]]] = {
    "inference": {
        "tests/inference/test_ray_batch.py::test_ray_resumes_and_matches_single_process": (
            "instseg/inference/ray_batch.py",
        ),
        "tests/inference/test_ray_batch.py::test_ray_with_an_exported_file": ("instseg/inference/ray_batch.py",),
    },
}

COMPARE_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BINOP_SWAP: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
NAME_SWAP: dict[str, str] = {
    "min": "max",
    "max": "min",
    "any": "all",
    "all": "any",
    "argmin": "argmax",
    "argmax": "argmin",
    "amin": "amax",
    "amax": "amin",
    "floor": "ceil",
    "ceil": "floor",
}


@dataclass(frozen=True)
class Mutant:
    """One planted change: the file, the index of the node in ``ast.walk`` order, and a readable description."""

    path: str
    node_index: int
    line: int
    description: str


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside a type annotation (mutating ``int | None`` is not a behaviour change)."""
    skip: set[int] = set()
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.returns is not None:
                roots.append(node.returns)
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None and a.annotation is not None:
                    roots.append(a.annotation)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    for root in roots:
        skip.update(id(n) for n in ast.walk(root))
    return skip


def _describe(node: ast.AST) -> str | None:
    """What mutating this node would do, or None when the node is not a mutation site."""
    if isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARE_SWAP:
        return f"{type(node.ops[0]).__name__} -> {COMPARE_SWAP[type(node.ops[0])].__name__}"
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BINOP_SWAP:
        return f"{type(node.op).__name__} -> {BINOP_SWAP[type(node.op)].__name__}"
    if isinstance(node, ast.BoolOp):
        return "And -> Or" if isinstance(node.op, ast.And) else "Or -> And"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        return f"drop {type(node.op).__name__}"
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and type(node.value) in (bool, int, float)
    ):
        if isinstance(node.value, bool):
            return f"{node.value} -> {not node.value}"
        return f"{node.value!r} -> {_new_number(node.value)!r}"
    if isinstance(node, ast.Name) and node.id in NAME_SWAP and isinstance(node.ctx, ast.Load):
        return f"{node.id} -> {NAME_SWAP[node.id]}"
    if isinstance(node, ast.Attribute) and node.attr in NAME_SWAP and isinstance(node.ctx, ast.Load):
        return f".{node.attr} -> .{NAME_SWAP[node.attr]}"
    return None


def _new_number(value: int | float) -> int | float:
    if isinstance(value, int):
        return value + 1
    return 1.0 if value == 0 else value * 2


def _sites(tree: ast.AST, lines: list[str]) -> Iterator[tuple[int, ast.AST, str]]:
    skip = _annotation_nodes(tree)
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
    }
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip or id(node) in docstrings:
            continue
        line = getattr(node, "lineno", 0)
        if line and "pragma: no mutate" in lines[line - 1]:
            continue
        description = _describe(node)
        if description is not None:
            yield index, node, description


def file_mutants(rel: str, text: str) -> list[Mutant]:
    """Every mutation site of one file's source ``text`` (``rel``: its path relative to the repository)."""
    tree = ast.parse(text)
    return [Mutant(rel, i, getattr(n, "lineno", 0), d) for i, n, d in _sites(tree, text.splitlines())]


def find_mutants(source_dir: Path) -> list[Mutant]:
    """Every mutation site of the .py files under ``source_dir`` (relative to the repository)."""
    out: list[Mutant] = []
    for path in sorted((REPO / source_dir).rglob("*.py")):
        out.extend(file_mutants(str(path.relative_to(REPO)), path.read_text()))
    return out


def _identities(mutants: list[Mutant], text: str) -> dict[tuple[str, str, int], Mutant]:
    """Each mutant of one file keyed by what survives an edit elsewhere in the file: its description, the text of
    its line, and its rank among the mutants with that same description and line text."""
    lines = text.splitlines()
    seen: dict[tuple[str, str], int] = {}
    out: dict[tuple[str, str, int], Mutant] = {}
    for m in mutants:
        key = (m.description, lines[m.line - 1].strip() if m.line else "")
        out[(key[0], key[1], seen.get(key, 0))] = m
        seen[key] = seen.get(key, 0) + 1
    return out


def relocate(survivor: dict, old_text: str, new_text: str) -> Mutant | None:
    """The mutant of ``new_text`` that is ``survivor`` of ``old_text`` (lines moved by edits elsewhere in the
    file), or None when its line itself was edited."""
    path = survivor["path"]
    old = _identities(file_mutants(path, old_text), old_text)
    key = next((k for k, m in old.items() if m.node_index == survivor["node_index"]), None)
    if key is None:
        return None
    return _identities(file_mutants(path, new_text), new_text).get(key)


def _mutate(node: ast.AST) -> ast.AST:
    """A mutated copy of ``node`` (the replacement placed in the tree)."""
    new = copy.copy(node)
    if isinstance(new, ast.Compare):
        new.ops = [COMPARE_SWAP[type(new.ops[0])](), *new.ops[1:]]
    elif isinstance(new, (ast.BinOp, ast.AugAssign)):
        new.op = BINOP_SWAP[type(new.op)]()
    elif isinstance(new, ast.BoolOp):
        new.op = ast.Or() if isinstance(new.op, ast.And) else ast.And()
    elif isinstance(new, ast.UnaryOp):
        return new.operand
    elif isinstance(new, ast.Constant):
        assert isinstance(new.value, (int, float))  # bool is an int: only numbers are mutation sites
        new.value = (not new.value) if isinstance(new.value, bool) else _new_number(new.value)
    elif isinstance(new, ast.Name):
        new.id = NAME_SWAP[new.id]
    elif isinstance(new, ast.Attribute):
        new.attr = NAME_SWAP[new.attr]
    return new


def mutated_source(text: str, node_index: int) -> str:
    """The file's source with the node at ``node_index`` (``ast.walk`` order) mutated."""
    tree = ast.parse(text)
    target = next(n for i, n in enumerate(ast.walk(tree)) if i == node_index)
    replacement = _mutate(target)
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, name, replacement)
                return ast.unparse(ast.fix_missing_locations(tree))
            if isinstance(value, list):
                for k, item in enumerate(value):
                    if item is target:
                        value[k] = replacement
                        return ast.unparse(ast.fix_missing_locations(tree))
    raise AssertionError(f"node {node_index} has no parent")


# what the tests read besides the package: the shipped weights travel inside instseg/weights, the sample images
# the shipped-weights, tiling and Ray tests predict on live in examples/, the runtime distribution in runtime/
COPIED_DIRS = ("instseg", "tests", "configs", "examples", "runtime")
COPIED_FILES = ("pyproject.toml", "README.md")


def _copy_repo(dest: Path) -> None:
    """A private copy of what the tests need (the mutants are planted in it, never in the working tree)."""
    for name in COPIED_DIRS:
        if (REPO / name).exists():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".mypy_cache")
            shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in COPIED_FILES:
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dest / name)
    # each run's own scratch: pytest's temporary folders and Ray's session folder (a plain ``ray.init()`` joins
    # the newest cluster it finds under the Ray temp folder, so two runs sharing /tmp/ray would join each other)
    # (the Ray folder's name is kept short: Ray's Unix sockets under it must fit in 107 bytes)
    (dest / "p").mkdir()
    (dest / "r").mkdir()


def _run_tests(
    work: Path, tests: list[str], timeout: float, extra: list[str], stop_first: bool = True
) -> tuple[str, float, list[str]]:
    """'pass', 'fail' or 'timeout' of the tests on the copy, the seconds it took and the failed test ids."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(work), PYTHONDONTWRITEBYTECODE="1")
    env["RAY_TMPDIR"] = str(work / "r")
    env.pop("RAY_ADDRESS", None)  # never join a cluster started elsewhere
    shared = REPO.parent / "shared" / "data"
    if "INSTSEG_SHARED_DATA" not in env and shared.is_dir():
        env["INSTSEG_SHARED_DATA"] = str(shared)
    first = ["-x"] if stop_first else []
    cmd = [sys.executable, "-m", "pytest", *first, "-q", "-rfE", "-p", "no:cacheprovider", "-n", "0"]
    cmd += [f"--basetemp={work / 'p'}", *extra, *tests]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, []
    # failures and errors (a fixture that cannot set up fails its tests as ERROR)
    failed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return ("pass" if proc.returncode == 0 else "fail"), time.perf_counter() - start, failed


def _gated_out(name: str, path: str, all_tests: bool) -> list[str]:
    """The ``--deselect`` arguments of the package's gated tests that do not run against a mutant of ``path``."""
    if all_tests:
        return []
    return [f"--deselect={t}" for t, files in GATED_TESTS.get(name, {}).items() if path not in files]


def run_package(
    name: str,
    max_mutants: int,
    seed: int,
    extra: list[str],
    verbose: bool,
    retry: dict | None = None,
    all_tests: bool = False,
) -> dict:
    """Try a sample of the package's mutants; the counts, the score and every survivor.

    ``retry`` (a package entry of an earlier ``--report``) tries only that run's survivors again and counts its
    killed mutants as still killed: adding tests can only kill more, so this is the "after" score at a fraction
    of the cost. A survivor whose file was edited elsewhere is found again by its line's text (``relocate``); one
    whose own line was edited cannot be re-planted and stays a survivor.
    """
    source_dir, test_paths = PACKAGES[name]
    mutants = find_mutants(Path(source_dir))
    if retry is not None:
        by_key = {(m.path, m.node_index): m for m in mutants}
        earlier_sources = retry.get("sources", {})
        sample, stale = [], []
        for s in retry["survivors"]:
            m = by_key.get((s["path"], s["node_index"]))
            if m is not None and (m.description != s["description"] or m.line != s["line"]):
                m = None
            if m is None and s["path"] in earlier_sources:  # the file was edited since: find the same mutant
                m = relocate(s, earlier_sources[s["path"]], (REPO / s["path"]).read_text())
                if m is not None:
                    print(f"{name}: {s['path']}:{s['line']} {s['description']} is now at line {m.line}")
            if m is None:
                # its own line was edited since: this mutant cannot be re-planted, so it is counted as surviving
                print(f"{name}: {s['path']}:{s['line']} changed since the earlier report; kept as a survivor")
                stale.append(s)
                continue
            sample.append(m)
    else:
        sample = random.Random(seed).sample(mutants, min(max_mutants, len(mutants))) if max_mutants else mutants
    with tempfile.TemporaryDirectory(prefix="mut-") as tmp:
        work = Path(tmp)
        _copy_repo(work)
        tests = [t for t in test_paths if (work / t).exists()]
        status, baseline, failing = _run_tests(work, tests, timeout=1800, extra=extra, stop_first=False)
        if failing:  # tests already failing without a mutant cannot tell anything: leave them out, and say so
            print(f"{name}: deselected, failing on the unmutated copy: {' '.join(failing)}", flush=True)
            extra = [*extra, *(f"--deselect={t}" for t in failing)]
            status, baseline, _ = _run_tests(work, tests, timeout=1800, extra=extra)
        if status != "pass":
            raise SystemExit(f"{name}: the tests fail on the unmutated copy ({' '.join(tests)}); fix that first")
        # generous: on shared cores a slow run is not a hang, and a timeout counts as killed (listed apart)
        timeout = max(5 * baseline, baseline + 120)
        killed, survivors, timeouts = 0, [], []
        killers: dict[str, list[str]] = {}  # "path:line description" -> the test ids that failed on it
        for k, m in enumerate(sample, 1):
            original = (work / m.path).read_text()
            (work / m.path).write_text(mutated_source(original, m.node_index))
            try:
                status, seconds, failed_ids = _run_tests(
                    work, tests, timeout, extra + _gated_out(name, m.path, all_tests)
                )
            finally:
                (work / m.path).write_text(original)
            if status == "pass":
                survivors.append(asdict(m))
            else:
                killed += 1
                killers[f"{m.path}:{m.line} {m.description}"] = failed_ids
                if status == "timeout":
                    timeouts.append(asdict(m))
            if verbose:
                line = f"  [{k}/{len(sample)}] {m.path}:{m.line} {m.description}: {status} ({seconds:.0f} s)"
                print(line, flush=True)
        # the source each survivor was planted in, so that a later --retry-survivors finds it again after edits
        # elsewhere in its file
        sources = {p: (work / p).read_text() for p in sorted({s["path"] for s in survivors})}
    tried = len(sample)
    if retry is not None:  # the earlier run's killed mutants stay killed
        sources = {**retry.get("sources", {}), **sources}
        killed += retry["killed"]
        tried += retry["killed"] + len(stale)
        survivors = stale + survivors
        timeouts = retry["timeouts"] + timeouts
    return {
        "package": name,
        "sites": len(mutants),
        "tried": tried,
        "killed": killed,
        "survived": len(survivors),
        "score": killed / tried if tried else float("nan"),
        "baseline_s": round(baseline, 1),
        "tests": tests,
        "deselected": failing,
        "gated": {} if all_tests else GATED_TESTS.get(name, {}),
        "survivors": survivors,
        "timeouts": timeouts,
        "killed_by": {**(retry or {}).get("killed_by", {}), **killers},
        "sources": sources,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run each package, print one score line per package (and the survivors)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", action="append", choices=sorted(PACKAGES), help="repeatable; default: all")
    parser.add_argument("--max-mutants", type=int, default=50, help="random sample size per package (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed: equal seeds try equal mutants")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. \"-m 'not slow'\"")
    parser.add_argument("--list", action="store_true", help="print the sampled mutants and stop")
    parser.add_argument("--report", type=Path, help="also write the results as json to this new file")
    parser.add_argument("--retry-survivors", type=Path, help="an earlier --report: try only its survivors again")
    parser.add_argument(
        "--all-tests", action="store_true", help="run the slow gated tests (GATED_TESTS) against every mutant"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per mutant")
    args = parser.parse_args(argv)
    if args.report is not None and args.report.exists():
        raise SystemExit(f"--report {args.report}: file exists; choose a new name")
    names = args.package or sorted(PACKAGES)
    extra = shlex.split(args.pytest_args)
    results = []
    for name in names:
        if args.list:
            mutants = find_mutants(Path(PACKAGES[name][0]))
            sample = random.Random(args.seed).sample(mutants, min(args.max_mutants, len(mutants)))
            for m in sample if args.max_mutants else mutants:
                print(f"{name}: {m.path}:{m.line} {m.description}")
            continue
        retry = None
        if args.retry_survivors is not None:
            earlier = {e["package"]: e for e in json.loads(args.retry_survivors.read_text())}
            if name not in earlier:
                raise SystemExit(f"--retry-survivors {args.retry_survivors}: no entry for package {name}")
            retry = earlier[name]
        r = run_package(name, args.max_mutants, args.seed, extra, args.verbose, retry, args.all_tests)
        results.append(r)
        print(
            f"{name}: {r['killed']}/{r['tried']} mutants killed ({100 * r['score']:.0f}%), "
            f"{len(r['timeouts'])} of them by timeout, {r['sites']} sites, tests {r['baseline_s']} s",
            flush=True,
        )
        for s in r["survivors"]:
            print(f"  survived: {s['path']}:{s['line']} {s['description']}", flush=True)
    if args.report is not None and results:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
