"""The docs agree with the code: every setting and CLI command documented, no citation of a missing file."""

import os
import re
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from config import Settings
from hub.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLE_TOML = (ROOT / "config" / "hub.example.toml").read_text()


def settings_names() -> list[tuple[str | None, str]]:
    """(section, key) of every setting; nested models are TOML tables / HUB_<SECTION>__<KEY>."""
    names: list[tuple[str | None, str]] = []
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names += [(name, sub) for sub in model.model_fields]
        else:
            names.append((None, name))
    return names


def test_every_setting_is_in_the_readme():
    env = [f"HUB_{s.upper()}__{n.upper()}" if s else f"HUB_{n.upper()}" for s, n in settings_names()]
    missing = [n for n in env if f"`{n}`" not in README]
    assert not missing, f"settings missing from the README configuration table: {missing}"


def test_every_setting_is_in_the_example_toml():
    sections: dict[str | None, str] = {None: EXAMPLE_TOML.split("\n[", 1)[0]}
    for block in EXAMPLE_TOML.split("\n[")[1:]:
        title, _, body = block.partition("]")
        sections[title] = body
    missing = [
        f"{s}.{n}" if s else n
        for s, n in settings_names()
        if not re.search(rf"^(# )?{n} = ", sections.get(s, ""), re.MULTILINE)
    ]
    assert not missing, f"settings missing from config/hub.example.toml: {missing}"


def test_every_cli_command_is_in_the_readme():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = [c for c in sub.choices if f"`{c}" not in README]
    assert not missing, f"CLI commands missing from README: {missing}"


def test_two_setup_commands_are_named():
    assert "make run" in README and "make test" in README


def _project_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout
    files = [ROOT / line for line in listed.splitlines() if line]
    if not files:  # not a git checkout (an unpacked sdist): walk the tree instead
        files = [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return files


# Documents of the team that wrote the hub, not shipped with it: cite docs/DESIGN-NOTES.md instead.
_FOREIGN = re.compile(r"\b(OCPI-DIGEST|DESIGN section|REVIEW-20\d\d|STYLE\.md)\b")
_FILE = re.compile(r"(?<![\w/.-])([\w./-]+\.(?:md|py|toml))\b")
# Names that are not project files: written at run time, examples of an operator's files, test
# data, or the standard library in a profile. (The OCPI specification's own files are public
# documents, cited as *.asciidoc, and not checked here.)
_NOT_FILES = {"hub.toml", "latest.json", "nope.toml", "file.py", "selectors.py"}


def test_docs_and_comments_cite_only_files_in_the_project():
    files = _project_files()
    paths = {str(p.relative_to(ROOT)) for p in files}
    names = {p.name for p in files}
    problems = []
    for path in files:
        if path.suffix not in (".py", ".md", ".toml") or "fixtures" in path.parts:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            if path.name != "test_docs.py":  # the pattern itself
                problems += [f"{where}: cites {m.group(1)}" for m in _FOREIGN.finditer(line)]
            for match in _FILE.finditer(line):
                cited = match.group(1).strip("./")
                relative = (path.parent / match.group(1)).resolve()
                if cited in paths or Path(cited).name in names | _NOT_FILES or relative.is_file():
                    continue
                problems.append(f"{where}: cites {match.group(1)}, not in the project")
    assert not problems, "\n".join(problems)


def test_make_run_installs_only_what_running_needs():
    makefile = (ROOT / "Makefile").read_text()
    run_stamp = makefile.split("$(RUN_STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet -e .\n" in run_stamp + "\n" and "[test]" not in run_stamp
    run_target = makefile.split("\nrun: ", 1)[1].split("\n\n", 1)[0]
    assert run_target.startswith("$(RUN_STAMP)") and "serve --init" in run_target
    assert re.search(r"^test: \$\(STAMP\)", makefile, re.MULTILINE)


def _make_targets() -> dict[str, list[str]]:
    """Each Makefile target and its recipe lines."""
    targets: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line.strip())
            continue
        match = re.match(r"^([a-z][\w-]*):", line)
        current = targets.setdefault(match.group(1), []) if match else None
    return targets


def test_every_make_target_the_docs_name_exists():
    targets = _make_targets()
    docs = [README, *(p.read_text() for p in (ROOT / "docs").glob("*.md")), (ROOT / "bench" / "README.md").read_text()]
    named = {name for text in docs for name in re.findall(r"`make ([a-z][\w-]*)", text)}
    assert named and not named - set(targets), f"documented but not in the Makefile: {sorted(named - set(targets))}"
    phony = re.search(r"^\.PHONY: (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert phony is not None
    assert not set(phony.group(1).split()) - set(targets), "a .PHONY name without a target"


def test_the_pytest_recipes_take_their_own_options():
    """`make fuzz` once disabled pytest-timeout (-p no:timeout) while pyproject sets its option: no test ran."""
    # `make test` runs plain pytest: CI runs that one anyway. The others pass their own options.
    recipes = [
        line
        for lines in _make_targets().values()
        for line in lines
        if "$(BIN)/python -m pytest" in line and line.split("$(BIN)/python -m pytest", 1)[1].strip()
    ]
    assert len(recipes) >= 2  # fuzz, screenshots
    for line in recipes:
        assignments, arguments = line.split("$(BIN)/python -m pytest", 1)
        env = os.environ | dict(pair.split("=", 1) for pair in assignments.split())
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *arguments.split(), "--collect-only", "-q"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{line}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
