"""The package's layout rules (docs/ARCHITECTURE.md), checked on the source itself.

- no module imports a private name (``_x``) from another room;
- the rooms' imports form no cycle (function-level imports included);
- no function is longer than about 60 lines of code without the reason written next to it
  (a comment just above its ``def`` that says why it is ``longer than`` the guide).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fercourse"
MAX_LINES = 62  # "about 60"


def _modules(package: Path = PACKAGE) -> list[tuple[str, Path, ast.Module]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path, ast.parse(path.read_text(), str(path))))
    return found


def _room(module: str) -> str:
    """fercourse.training.fit -> training; fercourse.rundir -> rundir."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(module: str, path: Path, tree: ast.Module):
    """(target module, imported names, line) of every ``from ... import`` inside fercourse."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target == "fercourse" or target.startswith("fercourse."):
            yield target, [alias.name for alias in node.names], node.lineno


def _room_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path, tree in _modules(package):
        me = _room(module)
        for target, names, _ in _imports(module, path, tree):
            rooms = (
                [_room(f"fercourse.{n}") for n in names]
                if target == "fercourse"
                else [_room(target)]
            )
            graph.setdefault(me, set()).update(r for r in rooms if r and r != me)
    return graph


def private_imports(package: Path = PACKAGE) -> list[str]:
    offences = []
    for module, path, tree in _modules(package):
        for target, names, line in _imports(module, path, tree):
            if _room(target) == _room(module):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                offences.append(
                    f"{path.relative_to(package)}:{line} imports {private} from {target}"
                )
    return offences


def room_cycles(package: Path = PACKAGE) -> list[str]:
    graph = _room_graph(package)

    def path_between(start: str, goal: str) -> list[str] | None:
        stack, seen = [[start]], set()
        while stack:
            trail = stack.pop()
            if trail[-1] == goal:
                return trail
            if trail[-1] in seen:
                continue
            seen.add(trail[-1])
            stack.extend([*trail, nxt] for nxt in sorted(graph.get(trail[-1], ())))
        return None

    cycles = []
    for room, targets in sorted(graph.items()):
        for target in sorted(targets):
            back = path_between(target, room)
            if back:
                cycles.append(" -> ".join([room, *back]))
    return cycles


def test_no_room_imports_another_rooms_private_names():
    offences = private_imports()
    assert not offences, "\n".join(offences)


def test_the_rooms_import_each_other_without_cycles():
    assert {"training", "course", "ops", "explain", "rundir"} <= set(_room_graph())  # were read
    cycles = room_cycles()
    assert not cycles, "\n".join(cycles)


def test_the_import_rules_catch_a_private_import_and_a_cycle(tmp_path):
    package = tmp_path / "fercourse"
    for room in ("data", "training"):
        (package / room).mkdir(parents=True)
        (package / room / "__init__.py").write_text("")
    (package / "data" / "load.py").write_text("from ..training.fit import _helper\n")
    (package / "training" / "fit.py").write_text("def _helper():\n    from ..data import load\n")
    assert private_imports(package) == [
        "data/load.py:1 imports ['_helper'] from fercourse.training.fit"
    ]
    assert room_cycles(package) == ["data -> training -> data", "training -> data -> training"]


def _code_lines(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of the function's body that hold code (no blank lines, comments or docstring)."""
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
        body = body[1:]
    first, last = body[0].lineno, node.end_lineno
    lines = source.splitlines()[first - 1 : last]
    code = set()
    tokens = tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline)
    for token in tokens:
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                              tokenize.DEDENT, tokenize.ENDMARKER):  # fmt: skip
            code.update(range(token.start[0], token.end[0] + 1))
    return len(code)


def _reason_above(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = source.splitlines()[max(first - 6, 0) : first - 1]
    return any(line.strip().startswith("#") and "longer than" in line.lower() for line in above)


def long_functions(package: Path = PACKAGE) -> list[str]:
    """Functions over the guide with no reason written above them."""
    found = []
    for _, path, tree in _modules(package):
        source = path.read_text()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(source, node)
                if n > MAX_LINES and not _reason_above(source, node):
                    found.append(
                        f"{path.relative_to(package)}:{node.lineno} {node.name}: {n} lines"
                    )
    return found


def test_long_functions_say_why():
    long = long_functions()
    assert not long, "longer than about 60 lines, with no reason next to them:\n" + "\n".join(long)


def test_the_length_rule_catches_a_long_function_and_accepts_a_reason(tmp_path):
    package = tmp_path / "fercourse"
    package.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(70))
    (package / "long.py").write_text(f'"""A module."""\n\n\ndef long_one():\n{body}    return 0\n')
    assert long_functions(package) == ["long.py:4 long_one: 71 lines"]
    reason = "# Longer than the guide: seventy assignments, one per line.\n"
    (package / "long.py").write_text(f"{reason}def long_one():\n{body}    return 0\n")
    assert long_functions(package) == []
