"""Read YAML keeping the line of every key, and resolve ${VAR} from the environment.

Pydantic reports errors by path (sources.0.fields.title.type); users need a line number, so the
loader keeps a path -> line map built from PyYAML's node tree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from syncdash.errors import ConfigError

Path_ = tuple[str | int, ...]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class LoadedYaml:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    secret_paths: set[Path_] = field(default_factory=set)

    def line_of(self, path: Path_) -> int | None:
        """The line of the deepest known prefix of path (an error on a missing key points at its parent)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct(node: yaml.Node, path: Path_, out: LoadedYaml, file: str, env: dict[str, str]) -> Any:
    out.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError("YAML merge keys (<<) are not supported", file=file,
                                  line=key_node.start_mark.line + 1)
            key = _Loader.construct_object(_Loader(""), key_node)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ConfigError("mapping keys must be plain scalars", file=file,
                                  line=key_node.start_mark.line + 1)
            # keys are names: YAML 1.1 would read `on:` or `yes:` as booleans, keep what was written
            key = key_node.value if isinstance(key, bool) else str(key) if not isinstance(key, str) else key
            if key in result:
                raise ConfigError("duplicate key", file=file, line=key_node.start_mark.line + 1,
                                  key=".".join(str(p) for p in (*path, key)))
            child = (*path, key)
            out.lines[child] = key_node.start_mark.line + 1
            result[key] = _construct(value_node, child, out, file, env)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, (*path, i), out, file, env) for i, v in enumerate(node.value)]
    value = _Loader("").construct_object(node)
    if isinstance(value, str) and "${" in value:
        value = _interpolate(value, path, node.start_mark.line + 1, out, file, env)
    return value


def _interpolate(value: str, path: Path_, line: int, out: LoadedYaml, file: str,
                 env: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise ConfigError(f"environment variable ${{{name}}} is not set", file=file, line=line,
                              key=".".join(str(p) for p in path))
        resolved = env[name]
        if resolved:
            out.secrets.add(resolved)
        return resolved

    result = _VAR.sub(repl, value)
    out.secret_paths.add(path)
    return result


_KEY_ON_LINE = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.-]+)\s*:(?:\s|$)")


def _human(e: yaml.MarkedYAMLError, context_line: int | None) -> str:
    """PyYAML's parser wording ("expected <block end>, but found '<block mapping start>'") as what to fix."""
    problem = str(e.problem or "")
    context = str(e.context or "")
    opened = f" on line {context_line}" if context_line else ""
    if context.startswith("while scanning a quoted"):
        return f"the quote opened{opened} is never closed"
    if context.startswith("while parsing a flow sequence"):
        return f"the `[` opened{opened} is never closed (or an item lacks its comma)"
    if context.startswith("while parsing a flow mapping"):
        return f"the `{{` opened{opened} is never closed (or an entry lacks its comma)"
    if "'\\t'" in problem or "\t" in problem:
        return "a tab character; indent with spaces"
    if problem.startswith("mapping values are not allowed"):
        return "a `:` where a value was expected; quote a value that contains `: `"
    if problem.startswith("expected <block end>") or "<block mapping start>" in problem:
        return "this line is indented differently from the lines around it"
    if problem.startswith("found duplicate anchor") or problem.startswith("found undefined alias"):
        return problem
    return problem + (f" ({context}{opened})" if context else "") if problem else str(e)


def _syntax_error(e: yaml.MarkedYAMLError, text: str, file: str) -> ConfigError:
    """file:line: key: invalid YAML ..., pointing at the line to fix rather than where PyYAML gave up."""
    problem = e.problem_mark.line + 1 if e.problem_mark else None
    context = e.context_mark.line + 1 if e.context_mark else None
    # an unclosed quote or bracket is only noticed lines later: the line that opened it is the one to fix
    opener = bool(e.context) and str(e.context).startswith(("while scanning a quoted", "while parsing a flow"))
    line = context if opener and context else (problem or context)
    mark = e.context_mark if opener and e.context_mark else (e.problem_mark or e.context_mark)
    column = mark.column + 1 if mark is not None else None
    at = f" at line {line}" + (f", column {column}" if column else "") if line else ""
    reason = f"invalid YAML{at}: {_human(e, context)}"
    key = None
    if line is not None:
        lines = text.splitlines()
        m = _KEY_ON_LINE.match(lines[line - 1]) if line <= len(lines) else None
        key = m.group(1) if m else None
    return ConfigError(reason, file=file, line=line, key=key)


def load_yaml(text: str, file: str, env: dict[str, str] | None = None) -> LoadedYaml:
    env = dict(os.environ) if env is None else env
    out = LoadedYaml(data=None)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        raise _syntax_error(e, text, file) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {e}", file=file) from None
    out.data = {} if node is None else _construct(node, (), out, file, env)
    return out
