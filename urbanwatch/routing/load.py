"""Read a route file: YAML -> `RouteFile`, or a `RouteFileError` naming the line and field.

Pure (text in, model out). The shipped defaults are `routes.yaml` beside this module.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from urbanwatch.routing.model import RouteFile
from urbanwatch.storable import find_unstorable
from urbanwatch.yaml_lines import error_line

MAX_BYTES = 1_000_000  # a route file is a few kB; anything this big is a mistake


class RouteFileError(ValueError):
    """The first problem of a refused file: `line N: field: what is wrong`."""

    def __init__(self, line: int, field: str, problem: str):
        self.line, self.field, self.problem = line, field, problem
        super().__init__(f"line {line}: {field}: {problem}" if field else f"line {line}: {problem}")


def default_text() -> str:
    return resources.files("urbanwatch.routing").joinpath("routes.yaml").read_text("utf-8")


def parse_route_file(text: str) -> RouteFile:
    """The validated file, with each route's line; refused as a whole on any problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise RouteFileError(1, "", f"larger than {MAX_BYTES} bytes")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RouteFileError(error_line(text, mark), "", f"not YAML: {problem}") from None
    except ValueError as exc:  # e.g. a character YAML cannot hold
        raise RouteFileError(1, "", f"not YAML: {exc}") from None
    if root is None or not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise RouteFileError(1, "", "a route file is a mapping with version, sla, units, ...")
    _refuse_duplicate_keys(root, ())
    unstorable = find_unstorable(data)  # e.g. "\0" in a name: PostgreSQL cannot store it
    if unstorable:
        loc, reason = unstorable
        raise RouteFileError(_line_of(root, loc), _field(loc), reason)
    if isinstance(data.get("routes"), list):
        for route, node in zip(data["routes"], _child(root, "routes").value, strict=False):
            if isinstance(route, dict) and "line" in route:
                raise RouteFileError(node.start_mark.line + 1, "routes.line", "not a route field")
    try:
        parsed = RouteFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        msg = error["msg"].removeprefix("Value error, ")
        raise RouteFileError(_line_of(root, loc), _field(loc), msg) from None
    lines = [n.start_mark.line + 1 for n in _child(root, "routes").value]
    parsed = parsed.model_copy(
        update={
            "routes": [
                r.model_copy(update={"line": n}) for r, n in zip(parsed.routes, lines, strict=True)
            ]
        }
    )
    _check_references(parsed, root)
    return parsed


def _check_references(f: RouteFile, root: yaml.Node) -> None:
    for name, crew in f.crews.items():
        where = _line_of(root, ("crews", name))
        if crew.unit not in f.units:
            raise RouteFileError(where, f"crews.{name}.unit", f"no unit {crew.unit!r}")
        for ch in crew.channels:
            if ch not in f.channels:
                raise RouteFileError(where, f"crews.{name}.channels", f"no channel {ch!r}")
    seen: dict[tuple[Any, ...], int] = {}
    for i, route in enumerate(f.routes):
        if route.unit not in f.units:
            raise RouteFileError(route.line, f"routes[{i}].unit", f"no unit {route.unit!r}")
        for field in ("crews", "escalate"):
            for crew in getattr(route, field):
                if crew not in f.crews:
                    raise RouteFileError(route.line, f"routes[{i}].{field}", f"no crew {crew!r}")
        key = (route.kind, route.district, route.min_severity)
        if key in seen:
            raise RouteFileError(
                route.line, f"routes[{i}]", f"same kind, district and severity as line {seen[key]}"
            )
        seen[key] = route.line
    if (None, None, None) not in seen:
        raise RouteFileError(
            _line_of(root, ("routes",)),
            "routes",
            "no catch-all route (one without kind, district and min_severity): "
            "an alert that matches no route would reach nobody",
        )


def _child(node: yaml.Node, key: object) -> yaml.Node:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == str(key):
                return v
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    raise KeyError(key)


def _line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The line of the deepest node along `loc` (the path pydantic reports): a mapping
    entry's key, a list item's first line."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            keys = [k for k, _ in node.value if k.value == str(part)]
            if not keys:
                break
            line = keys[0].start_mark.line + 1
        try:
            node = _child(node, part)
        except KeyError:
            break
        if isinstance(part, int):
            line = node.start_mark.line + 1
    return line


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in (p for p in loc if p != "[key]"):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _refuse_duplicate_keys(node: yaml.Node, path: tuple[str, ...]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            key = str(k.value) if isinstance(k, yaml.ScalarNode) else repr(k.start_mark)
            if key in seen:
                field = ".".join((*path, key))
                raise RouteFileError(k.start_mark.line + 1, field, "key given twice")
            seen.add(key)
            _refuse_duplicate_keys(v, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _refuse_duplicate_keys(v, (*path, str(i)))
