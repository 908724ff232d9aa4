"""Mutation testing: change a module one small step at a time and check that its tests notice.

Each mutant is one change: a comparison flipped at its boundary (``<`` → ``<=``) or negated
(``==`` → ``!=``, ``in`` → ``not in``), ``and``/``or`` swapped, a ``not`` dropped, an integer
constant ±1, ``True``/``False`` swapped, ``+``/``-`` and ``*``/``/`` swapped, ``max``/``min`` and
``any``/``all`` swapped, ``break``/``continue`` swapped, or a function that returns an empty value
(``None``, ``[]``, ``0``, ``False``, …) at once.  Decorators, docstrings and other text (but not the
expressions inside f-strings), annotations, logging calls and lines marked ``# pragma: no mutate`` are left alone.

The modules and the test files that exercise them are listed in pyproject.toml
(``[tool.scorebot.mutation]``).  Per module: one baseline run of its test files records which test
reaches which line; then each mutant runs, in a forked process, only the tests that reach its lines
(all of them for code that runs at import), fastest first, stopping at the first failure, within a
timeout.  A mutant that survives that selection is run again against all of the module's test
files before it is reported.  Equivalent mutants (no test can tell them from the original) are
listed, each with a one-line reason, in the file named by ``equivalent``; they are left out of the
score and printed.

Usage: ``scripts/mutate [MODULE ...] [--list] [--mutant ID ...]`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

COMPARE_SWAPS: dict[type[ast.cmpop], list[type[ast.cmpop]]] = {
    ast.Lt: [ast.LtE, ast.GtE],
    ast.LtE: [ast.Lt, ast.Gt],
    ast.Gt: [ast.GtE, ast.LtE],
    ast.GtE: [ast.Gt, ast.Lt],
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
}
BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
}
NAME_SWAPS = {"max": "min", "min": "max", "any": "all", "all": "any"}
LOG_NAMES = {"log", "logger", "logging"}
NO_MUTATE = "pragma: no mutate"


@dataclass(frozen=True)
class Mutant:
    """One change to one module: the bytes ``start:end`` of the source become ``replacement``."""

    path: str
    line: int
    lines: range
    start: int
    end: int
    replacement: str
    change: str
    at_import: bool
    ident: str = ""

    def apply(self, source: bytes) -> bytes:
        """The module's source with this change made."""
        return source[: self.start] + self.replacement.encode() + source[self.end :]

    def where(self) -> str:
        """``path:line``."""
        return f"{self.path}:{self.line}"


@dataclass
class ModuleSpec:
    """A module under mutation: its tests and, optionally, the only functions to mutate."""

    path: str
    tests: list[str]
    only: list[str] = field(default_factory=list)


@dataclass
class Settings:
    """``[tool.scorebot.mutation]`` from pyproject.toml."""

    modules: list[ModuleSpec]
    equivalent: Path
    preload: list[str]
    timeout_factor: float
    min_timeout: float


def load_settings() -> Settings:
    """Read the mutation settings from pyproject.toml."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["scorebot"]["mutation"]
    modules = [ModuleSpec(path, spec["tests"], spec.get("only", [])) for path, spec in table["modules"].items()]
    return Settings(
        modules=modules,
        equivalent=ROOT / table["equivalent"],
        preload=table.get("preload", []),
        timeout_factor=float(table.get("timeout_factor", 4)),
        min_timeout=float(table.get("min_timeout", 15)),
    )


# --- finding mutants ---------------------------------------------------------------------------


class _Finder(ast.NodeVisitor):
    """Walks a module's tree and lists its mutants in source order."""

    def __init__(self, path: str, source: bytes, only: list[str]) -> None:
        self.path = path
        self.source = source
        self.lines = source.split(b"\n")
        self.offsets = [0]
        for line in self.lines:
            self.offsets.append(self.offsets[-1] + len(line) + 1)
        self.only = only
        self.scope: list[str] = []
        self.in_function = 0
        self.found: list[Mutant] = []

    # positions and text
    def _offset(self, line: int, col: int) -> int:
        return self.offsets[line - 1] + col

    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = self._offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self._offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def _text(self, node: ast.AST) -> str:
        start, end = self._span(node)
        return self.source[start:end].decode()

    def _wanted(self, node: ast.AST) -> bool:
        if self.only and not any(
            ".".join(self.scope) == name or ".".join(self.scope).startswith(name + ".") for name in self.only
        ):
            return False
        first, last = node.lineno, node.end_lineno  # type: ignore[attr-defined]
        return not any(NO_MUTATE.encode() in self.lines[n - 1] for n in range(first, last + 1))

    def _add(self, node: ast.AST, replacement: str, change: str, *, span: tuple[int, int] | None = None) -> None:
        if not self._wanted(node):
            return
        start, end = span or self._span(node)
        first, last = node.lineno, node.end_lineno  # type: ignore[attr-defined]
        self.found.append(
            Mutant(
                path=self.path,
                line=first,
                lines=range(first, last + 1),
                start=start,
                end=end,
                replacement=replacement,
                change=change,
                at_import=not self.in_function,
            )
        )

    def _replace(self, node: ast.expr, new: ast.expr) -> None:
        before = self._text(node)
        try:
            same = ast.dump(ast.parse(f"({before})", mode="eval").body) == ast.dump(node)
        except SyntaxError:
            same = False
        if not same:  # a position the parser reports wrongly: leave it alone
            return
        after = ast.unparse(new)
        self._add(node, f"({after})", f"`{_short(before)}` → `{_short(after)}`")

    # scopes
    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self.scope.append(node.name)
        self.in_function += 1
        self._early_return(node)
        for statement in node.body:
            self.visit(statement)
        self.in_function -= 1
        self.scope.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        for statement in node.body:
            self.visit(statement)
        self.scope.pop()

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.in_function += 1
        self.visit(node.body)
        self.in_function -= 1

    # left alone: decorators (declarations), text, annotations, docstrings, logging
    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                self.visit(part.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_Expr(self, node: ast.Expr) -> None:
        if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            self.visit(node.value)

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in LOG_NAMES:
            return
        if isinstance(func, ast.Name) and func.id in NAME_SWAPS and self._wanted(node):
            swapped = NAME_SWAPS[func.id]
            self._add(func, swapped, f"`{func.id}(…)` → `{swapped}(…)`")
        self.generic_visit(node)

    # mutations
    def visit_Compare(self, node: ast.Compare) -> None:
        for position, op in enumerate(node.ops):
            for swap in COMPARE_SWAPS.get(type(op), []):
                ops = list(node.ops)
                ops[position] = swap()
                self._replace(node, ast.Compare(left=node.left, ops=ops, comparators=node.comparators))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._replace(node, ast.BoolOp(op=other, values=node.values))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._replace(node, node.operand)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = BINOP_SWAPS.get(type(node.op))
        sides = (node.left, node.right)
        textual = any(isinstance(side, ast.Constant | ast.JoinedStr) and not _is_number(side) for side in sides)
        if swap is not None and not textual:
            self._replace(node, ast.BinOp(left=node.left, op=swap(), right=node.right))
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        swap = BINOP_SWAPS.get(type(node.op))
        if swap is not None and not (isinstance(node.value, ast.Constant) and not _is_number(node.value)):
            new = ast.AugAssign(target=node.target, op=swap(), value=node.value)
            before, after = self._text(node), ast.unparse(new)
            self._add(node, after, f"`{_short(before)}` → `{_short(after)}`")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._replace(node, ast.Constant(not value))
        elif isinstance(value, int):
            for new in (value + 1, value - 1):
                self._replace(node, ast.Constant(new))
        elif isinstance(value, float):
            self._replace(node, ast.Constant(value + 1))

    def visit_Break(self, node: ast.Break) -> None:
        self._add(node, "continue", "`break` → `continue`")

    def visit_Continue(self, node: ast.Continue) -> None:
        self._add(node, "break", "`continue` → `break`")

    def _early_return(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node)):
            return
        body = node.body
        if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        first = body[0]
        stub = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and first.value.value is ...
        if stub or first.lineno == node.lineno or isinstance(first, ast.Return | ast.Raise | ast.Pass):
            return  # a stub (a Protocol's method) never runs; a one-line body has nowhere to put the return
        indent = " " * first.col_offset
        start = self._offset(first.lineno, first.col_offset)
        for value in _empty_values(node.returns):
            self._add(
                first,
                f"return {value}\n{indent}",
                f"`def {node.name}` returns `{value}` at once",
                span=(start, start),
            )


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 90 else text[:87] + "…"


def _empty_values(returns: ast.expr | None) -> list[str]:
    """The empty values a function annotated ``returns`` could return at once."""
    if returns is None:
        return []
    text = ast.unparse(returns).replace("'", "").replace('"', "")
    if text == "None" or text.endswith("| None") or text.startswith("None |") or text.startswith("Optional["):
        return ["None"]
    base = text.split("[", 1)[0].rsplit(".", 1)[-1]
    empties = {
        "bool": ["False", "True"],
        "int": ["0"],
        "float": ["0.0"],
        "str": ["''"],
        "list": ["[]"],
        "Sequence": ["[]"],
        "Iterable": ["[]"],
        "dict": ["{}"],
        "Mapping": ["{}"],
        "set": ["set()"],
        "frozenset": ["frozenset()"],
        "tuple": ["()"],
    }
    return empties.get(base, [])


def find_mutants(spec: ModuleSpec, source: bytes) -> list[Mutant]:
    """Every mutant of ``source``, each with an ID that survives edits elsewhere in the file."""
    finder = _Finder(spec.path, source, spec.only)
    finder.visit(ast.parse(source))
    seen: dict[tuple[str, str], int] = {}
    mutants = []
    for mutant in finder.found:
        text = " ".join(b" ".join(finder.lines[n - 1].split()).decode() for n in mutant.lines)
        occurrence = seen.get((text, mutant.change), 0)
        seen[(text, mutant.change)] = occurrence + 1
        key = f"{spec.path}\n{text}\n{mutant.change}\n{occurrence}"
        ident = hashlib.sha1(key.encode()).hexdigest()[:8]  # noqa: S324 - a name, not a secret
        mutants.append(Mutant(**{**mutant.__dict__, "ident": ident}))
    return mutants


# --- equivalent mutants ------------------------------------------------------------------------


def load_equivalent(path: Path) -> dict[str, tuple[str, str]]:
    """``ID → (module path, reason)`` from the equivalent-mutants file (``ID PATH:LINE reason``)."""
    entries: dict[str, tuple[str, str]] = {}
    if not path.exists():
        return entries
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([0-9a-f]{8})\s+(\S+?):\d+\s+(.+)", line)
        if match is None:
            sys.exit(f"{path.name}:{number}: expected `ID PATH:LINE reason`, got {line!r}")
        entries[match[1]] = (match[2], match[3])
    return entries


# --- running tests in forked processes ---------------------------------------------------------


@dataclass
class Workspace:
    """A copy of the project where one module at a time is changed."""

    root: Path

    @classmethod
    def create(cls) -> Workspace:
        """Copy the project's files (tracked and untracked, not ignored) to a temporary directory."""
        root = Path(tempfile.mkdtemp(prefix="scorebot-mutate-")).resolve()
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = ROOT / name
            if source.is_file():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, root / name)
        return cls(root)

    def remove(self) -> None:
        """Delete the copy."""
        shutil.rmtree(self.root, ignore_errors=True)


def run_forked(workspace: Workspace, args: list[str], timeout: float, log: Path, plugin: object = None) -> int | None:
    """Run pytest with ``args`` in a child process; its exit status, or None when it ran out of time."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 3
        try:
            os.setsid()
            with open(log, "wb") as out:
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
            os.chdir(workspace.root)
            import pytest

            plugins = [plugin] if plugin is not None else []
            status = int(pytest.main(["-q", "-x", "-p", "no:cacheprovider", *args], plugins=plugins))
        except Exception:  # noqa: BLE001 - the child's log gets the traceback; its exit status says 3
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    deadline = time.monotonic() + timeout
    done = 0
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
    finally:  # out of time, or this command was stopped: the child and whatever it started go too
        if not done:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return None


class LineRecorder:
    """A pytest plugin that records, per test, the lines of one file that the test runs."""

    def __init__(self, filename: str, out: Path) -> None:
        self.filename = filename
        self.out = out
        self.current = ""
        self.lines: dict[str, set[int]] = {}
        self.durations: dict[str, float] = {}
        self.failed: list[str] = []

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines.setdefault(self.current, set()).add(frame.f_lineno)
        return self._local

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == self.filename:
            self.lines.setdefault(self.current, set()).add(frame.f_lineno)
            return self._local
        return None

    def pytest_configure(self, config: Any) -> None:
        """Start tracing this thread and every thread started from now on."""
        import threading

        sys.settrace(self._global)
        threading.settrace(self._global)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        """Attribute the lines run from now on to ``nodeid``."""
        self.current = nodeid

    def pytest_runtest_logreport(self, report: Any) -> None:
        """Add up each test's time; note failures."""
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.append(report.nodeid)

    def pytest_unconfigure(self, config: Any) -> None:
        """Write what was recorded."""
        sys.settrace(None)
        lines = {test: sorted(found) for test, found in self.lines.items() if test}
        self.out.write_text(json.dumps({"lines": lines, "durations": self.durations, "failed": self.failed}))


# --- one module ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one mutant."""

    mutant: Mutant
    result: str  # killed, timeout, survived, equivalent, error
    tests: int = 0
    reason: str = ""


@dataclass
class ModuleReport:
    """A module's mutants and what became of them."""

    path: str
    outcomes: list[Outcome]
    stale: list[tuple[str, str]]

    def count(self, *results: str) -> int:
        """How many mutants ended as any of ``results``."""
        return sum(1 for o in self.outcomes if o.result in results)

    @property
    def score(self) -> float:
        """Killed ÷ (mutants − equivalent), in per cent."""
        scored = len(self.outcomes) - self.count("equivalent")
        return 100.0 * self.count("killed", "timeout") / scored if scored else 100.0


def mutate_module(
    spec: ModuleSpec, settings: Settings, workspace: Workspace, selected: set[str], verbose: bool
) -> ModuleReport:
    """Run every mutant of one module (or the ``selected`` IDs) against its tests."""
    target = workspace.root / spec.path
    original = target.read_bytes()
    mutants = find_mutants(spec, original)
    equivalent = {k: v for k, v in load_equivalent(settings.equivalent).items() if v[0] == spec.path}
    known = {m.ident for m in mutants}
    stale = [(ident, reason) for ident, (_, reason) in equivalent.items() if ident not in known]
    if selected:
        mutants = [m for m in mutants if m.ident in selected]
    logs = Path(tempfile.mkdtemp(prefix="scorebot-mutate-logs-"))
    print(f"{spec.path}: {len(mutants)} mutants; baseline run of {', '.join(spec.tests)}", flush=True)

    started = time.monotonic()
    recorded = logs / "lines.json"
    try:
        status = run_forked(workspace, spec.tests, 1800, logs / "baseline.log", LineRecorder(str(target), recorded))
    except BaseException:  # stopped: nothing to keep
        shutil.rmtree(logs, ignore_errors=True)
        raise
    if status != 0 or not recorded.exists():
        sys.exit(f"{spec.path}: the tests fail without any mutation (exit {status}); see {logs / 'baseline.log'}")
    baseline = json.loads(recorded.read_text())
    durations: dict[str, float] = baseline["durations"]
    reached: dict[str, set[int]] = {test: set(lines) for test, lines in baseline["lines"].items()}
    if verbose:
        print(f"  baseline: {len(durations)} tests, {time.monotonic() - started:.1f} s (traced)", flush=True)

    outcomes = []
    try:
        for number, mutant in enumerate(mutants, start=1):
            if mutant.ident in equivalent:
                outcomes.append(Outcome(mutant, "equivalent", reason=equivalent[mutant.ident][1]))
                continue
            outcome = _run_mutant(mutant, target, original, spec, settings, workspace, durations, reached, logs)
            outcomes.append(outcome)
            if verbose:
                print(f"  [{number}/{len(mutants)}] {outcome.result:8} {mutant.where()} {mutant.change}", flush=True)
    except BaseException:  # stopped: nothing to keep
        shutil.rmtree(logs, ignore_errors=True)
        raise
    finally:
        target.write_bytes(original)
    if any(o.result == "error" for o in outcomes):
        print(f"  pytest's output for the mutants that ended in an error: {logs}", flush=True)
    else:
        shutil.rmtree(logs, ignore_errors=True)
    return ModuleReport(spec.path, outcomes, stale)


def _run_mutant(
    mutant: Mutant,
    target: Path,
    original: bytes,
    spec: ModuleSpec,
    settings: Settings,
    workspace: Workspace,
    durations: dict[str, float],
    reached: dict[str, set[int]],
    logs: Path,
) -> Outcome:
    """Run the tests that reach ``mutant``, then, if it survives them, all the module's test files."""
    if mutant.at_import:
        tests = list(durations)
    else:
        tests = [t for t, lines in reached.items() if t in durations and lines.intersection(mutant.lines)]
    tests.sort(key=durations.__getitem__)
    everything = sum(durations.values())
    runs = [(tests, sum(durations[t] for t in tests))] if tests else []
    if len(tests) < len(durations):  # a test may reach the line from a subprocess, where nothing is traced
        runs.append((spec.tests, everything))
    log = logs / f"{mutant.ident}.log"
    target.write_bytes(mutant.apply(original))
    try:
        for selection, seconds in runs:
            timeout = max(settings.min_timeout, settings.timeout_factor * seconds + 5)
            status = run_forked(workspace, selection, timeout, log)
            if status == 4 and b"ERROR: not found" in log.read_bytes():
                # the mutant changed a parametrized test's ID: run the files the selected tests are in
                files = list(dict.fromkeys(test.split("::")[0] for test in selection))
                status = run_forked(workspace, files, max(timeout, settings.timeout_factor * everything + 5), log)
            if status is None:
                return Outcome(mutant, "timeout", len(selection))
            if status in (1, 2, 3, 4):  # 4: the tests could not even be loaded (the baseline loaded them)
                return Outcome(mutant, "killed", len(selection))
            if status != 0:
                return Outcome(mutant, "error", len(selection), f"pytest exit status {status}")
        return Outcome(mutant, "survived", len(durations), "" if tests else "no test reaches it in-process")
    finally:
        target.write_bytes(original)


# --- the command ---------------------------------------------------------------------------------


def print_report(reports: list[ModuleReport]) -> None:
    """Per module: mutants, killed, survived, equivalent, score; then the survivors and equivalents."""
    print()
    print(f"{'module':34} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv.':>6} {'score':>7}")
    for report in reports:
        print(
            f"{report.path:34} {len(report.outcomes):7} {report.count('killed', 'timeout'):6} "
            f"{report.count('survived', 'error'):8} {report.count('equivalent'):6} {report.score:6.1f}%"
        )
    for report in reports:
        survivors = [o for o in report.outcomes if o.result in ("survived", "error")]
        equivalents = [o for o in report.outcomes if o.result == "equivalent"]
        if survivors:
            print(f"\n{report.path}: survived")
            for o in survivors:
                note = f"  ({o.reason})" if o.reason else ""
                print(f"  {o.mutant.ident} {o.mutant.where()}  {o.mutant.change}{note}")
        if equivalents:
            print(f"\n{report.path}: equivalent (not scored)")
            for o in equivalents:
                print(f"  {o.mutant.ident} {o.mutant.where()}  {o.mutant.change}: {o.reason}")
        if report.stale:
            print(f"\n{report.path}: equivalent entries that match no mutant any more (remove or update them)")
            for ident, reason in report.stale:
                print(f"  {ident} {reason}")


def main(argv: list[str] | None = None) -> int:
    """Run the command; exit status 0 when every mutant was killed or is listed as equivalent."""
    parser = argparse.ArgumentParser(prog="scripts/mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths from pyproject.toml (default: all, one by one)")
    parser.add_argument("--list", action="store_true", help="list the mutants (ID, place, change) and run nothing")
    parser.add_argument("--mutant", action="append", default=[], metavar="ID", help="run only this mutant")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each mutant's outcome as it comes")
    args = parser.parse_args(argv)
    settings = load_settings()
    by_path = {spec.path: spec for spec in settings.modules}
    unknown = [m for m in args.modules if m not in by_path]
    if unknown:
        parser.error(f"not configured in pyproject.toml: {', '.join(unknown)} (configured: {', '.join(by_path)})")
    specs = [by_path[m] for m in args.modules] or settings.modules

    if args.list:
        for spec in specs:
            for mutant in find_mutants(spec, (ROOT / spec.path).read_bytes()):
                print(f"{mutant.ident} {mutant.where()}  {mutant.change}")
        return 0

    sys.dont_write_bytecode = True
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # clean up when stopped
    for name in settings.preload:  # imported once here, so that each forked run starts warm
        importlib.import_module(name)
    workspace = Workspace.create()
    reports = []
    try:
        for spec in specs:
            reports.append(mutate_module(spec, settings, workspace, set(args.mutant), args.verbose))
    finally:
        workspace.remove()
    print_report(reports)
    return 0 if all(r.count("survived", "error") == 0 for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
