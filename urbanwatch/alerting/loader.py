"""Rule files: YAML text -> a validated `RuleSet`, or one error naming the line and field.

A file is taken or refused as a whole: the first problems (up to `MAX_PROBLEMS`) are listed,
each as `line N: rules[3].trigger: unknown name 'tilt'`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from urbanwatch.alerting.model import RuleSet
from urbanwatch.yaml_lines import error_line

MAX_PROBLEMS = 5
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~20x faster
DEFAULT_FILE = "rules.yaml"


class RuleFileError(ValueError):
    """A refused rule file; `problems` are (line or None, field path, message)."""

    def __init__(self, problems: list[tuple[int | None, str, str]]):
        self.problems = problems
        super().__init__("; ".join(_describe(p) for p in problems[:MAX_PROBLEMS]))


def _describe(problem: tuple[int | None, str, str]) -> str:
    line, path, message = problem
    where = f"line {line}: " if line else ""
    return f"{where}{path or '(file)'}: {message}"


def default_rules_text() -> str:
    return resources.files("urbanwatch.alerting").joinpath(DEFAULT_FILE).read_text("utf-8")


def default_rules() -> RuleSet:
    return parse_rules(default_rules_text())


def parse_rules(text: str) -> RuleSet:
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = error_line(text, mark)
        raise RuleFileError([(line, "", f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"not valid YAML: character U+{char:04X} is not allowed"
        raise RuleFileError([(line, "", problem)]) from None
    except yaml.YAMLError as exc:
        raise RuleFileError([(1, "", f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise RuleFileError([(1, "", "expected a mapping with a 'rules' list")])
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = []
        root = yaml.compose(text, Loader=_LOADER)  # the nodes know their lines
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append((_line(root, loc), _path(loc), message))
        raise RuleFileError(problems) from None


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest node on the path `loc` (1-based)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None:  # a missing or unknown key: the mapping's own line
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            return line
        node, line = child, child.start_mark.line + 1
    return line
