"""Mutation testing with mutmut, one module at a time, and the module's score.

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies the code to ``mutants/``, writes every
mutant of every function of the module there, records once which tests call which function, and runs each mutant
against the tests that call its function.  This script runs one module's mutants and prints its score:
killed ÷ (mutants − equivalent).  Equivalent mutants, changes no test can tell from the original, are
listed in tests/mutation-equivalent.txt, one a line: ``NAME reason``.

Usage: ``scripts/mutate MODULE [--only FUNCTION ...] [--resume]``, ``scripts/mutate --mutant NAME``,
``scripts/mutate --show NAME``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tests" / "mutation-equivalent.txt"
MUTMUT = str(Path(sys.executable).parent / "mutmut")
CHILDREN = os.environ.get("MUTATE_CHILDREN", "2")
"""How many mutants run at once (the machine's other users need the rest)."""
KILLED = ("killed", "timeout")


def module_name(path: str) -> str:
    """``bot/cards.py`` → ``bot.cards`` (a package's ``__init__.py`` is the package)."""
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def module_path(mutant: str) -> str:
    """The file a mutant's name points at: ``bot.cards.x_age__mutmut_1`` → ``bot/cards.py``."""
    module = mutant.split(".xǁ")[0] if ".xǁ" in mutant else mutant.split(".x_")[0]
    path = module.replace(".", "/")
    return f"{path}/__init__.py" if (ROOT / path).is_dir() else f"{path}.py"


def mutant_glob(module: str, function: str) -> str:
    """The names mutmut gives the mutants of ``function`` (``name`` or ``Class.name``) in ``module``."""
    owner, _, name = function.rpartition(".")
    return f"{module}.xǁ{owner}ǁ{name}__mutmut_*" if owner else f"{module}.x_{function}__mutmut_*"


def matches(name: str, patterns: list[str]) -> bool:
    """Whether a mutant's name matches one of the glob ``patterns``."""
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def load_equivalent() -> dict[str, str]:
    """Mutant name → why it is equivalent."""
    entries = {}
    for number, raw in enumerate(EQUIVALENT.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if "__mutmut_" not in name or not reason.strip():
            sys.exit(f"{EQUIVALENT.name}:{number}: expected `NAME reason` (NAME as mutmut prints it), got {line!r}")
        entries[name] = reason.strip()
    return entries


def results(path: str) -> dict[str, str]:
    """Each mutant of ``path`` and its status, from mutmut's record (``not checked`` before its run)."""
    meta = ROOT / "mutants" / f"{path}.meta"
    if not meta.exists():
        sys.exit(f"{path}: no mutants yet; run scripts/mutate {path}")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def mutmut(*args: str, only: str | None = None, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a mutmut command in the project's root; with ``only``, mutate that file alone (see ``ONLY``)."""
    tests = json.dumps(FOCUSED_TESTS.get(only or "", []))
    command = [sys.executable, "-c", ONLY, only, tests, *args] if only else [MUTMUT, *args]
    return subprocess.run(command, cwd=ROOT, capture_output=capture, text=True, check=False)  # noqa: S603


ONLY = (
    "import json, sys; from mutmut.configuration import config; from mutmut.__main__ import cli;"
    " settings = config(); settings.only_mutate = [sys.argv.pop(1)]; tests = json.loads(sys.argv.pop(1));"
    " settings.pytest_add_cli_args_test_selection = tests or settings.pytest_add_cli_args_test_selection; cli()"
)
"""mutmut reads its settings from pyproject.toml alone and mutates every file of ``source_paths``; this runs it
with ``only_mutate`` set to one file, the rest copied unchanged, and the module's ``FOCUSED_TESTS`` as its test
selection when it has some (its processes are forks: they keep the settings)."""

FOCUSED_TESTS: dict[str, list[str]] = {
    "bot/cards.py": [
        *("tests/test_cards.py", "tests/test_top_card.py", "tests/test_direction.py", "tests/test_kinds.py"),
        *("tests/test_replies.py", "tests/test_alert_cards.py", "tests/test_overview.py", "tests/test_card_parts.py"),
        *("-k", "not 250"),
    ],
    "bot/reports.py": [
        *("tests/test_reports.py", "tests/test_kinds.py", "tests/test_fetcher.py", "tests/test_top_items.py"),
        *("tests/test_reading_cache.py", "tests/test_direction.py", "tests/test_card_history.py"),
        *("tests/test_kept_cards.py", "tests/test_shared_scans.py", "tests/test_alert_check.py"),
        *("-k", "not postgres"),
    ],
}
"""The test files a module's mutants run against instead of the whole suite (``[tool.mutmut]``), where the suite
is too slow for them: the module's own fast tests, on SQLite. mutmut records per function which of these call
it; a survivor is then one these files miss, though a test elsewhere may kill it (docs/testing.md)."""


def prepare(path: str, module: str) -> None:
    """Undo what a run on another module left in ``mutants/`` that mutmut would take as still valid.

    Such a run copied ``path`` there unchanged, which mutmut takes for its mutated version when the copy is newer
    than the source: the copy goes, to be written again with its mutants.  Its record of which test calls which
    function kept only that module's functions: without one of ``module``'s, the record goes, to be made again.
    """
    mutated = ROOT / "mutants" / path
    if mutated.exists() and "__mutmut_" not in mutated.read_text():
        mutated.unlink()
    stats = ROOT / "mutants" / "mutmut-stats.json"
    if stats.exists() and not any(
        name.startswith(f"{module}.x") for name in json.loads(stats.read_text())["tests_by_mangled_function_name"]
    ):
        stats.unlink()


def change(name: str) -> list[str]:
    """The lines a mutant changes, as ``-old`` and ``+new``."""
    shown = mutmut("show", name, capture=True).stdout
    return [
        " ".join(line.split())
        for line in shown.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@dataclass
class Score:
    """A module's mutants by outcome, with the equivalent ones set apart."""

    path: str
    status: dict[str, str]
    equivalent: dict[str, str]

    def named(self, *statuses: str) -> list[str]:
        """The non-equivalent mutants with one of ``statuses``."""
        return [n for n, s in self.status.items() if s in statuses and n not in self.equivalent]

    @property
    def value(self) -> float:
        """Killed ÷ (mutants − equivalent), in per cent."""
        scored = len(self.status) - len(self.equivalent)
        return 100.0 * len(self.named(*KILLED)) / scored if scored else 100.0

    def print(self) -> None:
        """The table line, then every mutant not killed (with its change) and every equivalent one."""
        others = len(self.status) - len(self.equivalent) - len(self.named(*KILLED))
        print(f"\n{'module':28} {'mutants':>7} {'equiv.':>6} {'killed':>6} {'timeout':>7} {'other':>5} {'score':>7}")
        print(
            f"{self.path:28} {len(self.status):7} {len(self.equivalent):6} {len(self.named('killed')):6} "
            f"{len(self.named('timeout')):7} {others:5} {self.value:6.1f}%"
        )
        for name in self.named(*{s for s in self.status.values() if s not in KILLED}):
            print(f"\n{self.status[name]}: {name}\n    " + "\n    ".join(change(name)))
        for name in self.named("timeout"):
            print(f"\ntimeout (counted as killed): {name}\n    " + "\n    ".join(change(name)))
        for name, reason in self.equivalent.items():
            note = (
                "  ← KILLED: not equivalent, or its name now points at another change"
                if self.status[name] in KILLED
                else ""
            )
            print(f"\nequivalent: {name}: {reason}{note}\n    " + "\n    ".join(change(name)))


def main(argv: list[str] | None = None) -> int:
    """Run the command; exit status 0 when every mutant was killed or is listed as equivalent."""
    parser = argparse.ArgumentParser(prog="scripts/mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("module", nargs="?", help="a module's path, e.g. bot/cards.py")
    parser.add_argument("--only", action="append", default=[], metavar="FUNCTION", help="only this function's mutants")
    parser.add_argument("--resume", action="store_true", help="run only the mutants not yet run")
    parser.add_argument("--report", action="store_true", help="print the score of the last runs; run nothing")
    parser.add_argument("--mutant", metavar="NAME", help="run one mutant")
    parser.add_argument("--show", metavar="NAME", help="print one mutant's change and run nothing")
    args = parser.parse_args(argv)
    if args.show:
        return mutmut("show", args.show).returncode
    if args.mutant:
        path = module_path(args.mutant)
        prepare(path, module_name(path))
        return mutmut("run", "--max-children", CHILDREN, args.mutant, only=path).returncode
    if not args.module or not (ROOT / args.module).is_file():
        parser.error(f"expected a module's path, e.g. bot/cards.py; got {args.module!r}")
    module = module_name(args.module)
    # mutmut names a module's mutants MODULE.x_FUNCTION__mutmut_N (MODULE.xǁCLASSǁMETHOD__mutmut_N for methods)
    patterns = [mutant_glob(module, f) for f in args.only] or [f"{module}.x*"]
    if not args.report:
        run = patterns
        if args.resume and (ROOT / "mutants" / f"{args.module}.meta").exists():
            run = [n for n, s in results(args.module).items() if s == "not checked" and matches(n, patterns)]
        prepare(args.module, module)
        ran = mutmut("run", "--max-children", CHILDREN, *run, only=args.module) if run else None
        if ran and ran.returncode:
            return ran.returncode
    status = {n: s for n, s in results(args.module).items() if matches(n, patterns)}
    listed = {n: r for n, r in load_equivalent().items() if n.startswith(f"{module}.x")}
    stale = [n for n in listed if n not in results(args.module)]
    for n in stale:
        print(f"{EQUIVALENT.name}: {n} is no mutant of {args.module} any more: remove or rename it")
    score = Score(args.module, status, {n: r for n, r in listed.items() if n in status})
    score.print()
    return 0 if score.value == 100.0 and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
