"""The YAML layer under the configuration reader: text -> a tree of YAML nodes,
refusing what a configuration never needs, each refusal with its line.

Refused while composing (PyYAML's safe composer, made stricter): an alias
used as a key (``*k : 3``), an alias that refers to the node holding it,
nesting deeper than :data:`MAX_DEPTH`, aliases that repeat more than
:data:`MAX_ALIASED` values in all (an alias bomb: nine lists of nine aliases,
eight levels deep, are 43 million values in a file of 300 characters).  Refused while reading a node: a tag
other than YAML's core ones (``!foo``, ``!!python/...``, ``!!binary``), a key
that is not a plain value, and a scalar that cannot be read (``!!float x``, an
integer of thousands of digits).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent

MAX_DEPTH = 50  # a configuration needs 6
MAX_CHARACTERS = 1_000_000  # the embedded one has 2,000
MAX_ALIASED = 10_000  # values repeated by aliases, in all (a trial list reused by a few routes is hundreds)
CORE_TAGS = {"tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


class Refused(yaml.YAMLError):
    """YAML that is well-formed but not something a configuration may hold."""

    def __init__(self, problem: str, mark) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._open_anchors: list[str | None] = []
        self._aliased = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            if isinstance(parent, yaml.MappingNode) and index is None:
                raise Refused(f"an alias (*{event.anchor}) cannot be a key: write the key out", event.start_mark)
            if event.anchor in self._open_anchors:
                raise Refused(f"the alias *{event.anchor} refers to the value that holds it", event.start_mark)
            if event.anchor in self.anchors:
                self._aliased += self._size(self.anchors[event.anchor])
                if self._aliased > MAX_ALIASED:
                    raise Refused(
                        f"the aliases repeat more than {MAX_ALIASED:,} values in all: write the values out",
                        event.start_mark,
                    )
            return super().compose_node(parent, index)
        event = self.peek_event()
        if len(self._open_anchors) >= MAX_DEPTH:
            raise Refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self._open_anchors.append(getattr(event, "anchor", None))
        try:
            return super().compose_node(parent, index)
        finally:
            self._open_anchors.pop()

    def _size(self, node) -> int:
        """How many values ``node`` holds, itself included (each shared node counted once per use)."""
        size = self._sizes.get(id(node))
        if size is None:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
            if isinstance(node, yaml.MappingNode):
                children = [child for pair in node.value for child in pair]
            size = self._sizes[id(node)] = 1 + sum(self._size(child) for child in children)
        return size


def compose(text: str):
    """The root node of ``text`` (None when empty); yaml.YAMLError when it is not
    YAML or holds something refused (:class:`Refused`)."""
    if len(text) > MAX_CHARACTERS:
        raise Refused(f"longer than {MAX_CHARACTERS:,} characters: not a configuration", None)
    _check_brackets(text)
    return yaml.compose(text, Loader=_StrictLoader)


def _check_brackets(text: str) -> None:
    """Refuse flow nesting deeper than MAX_DEPTH before PyYAML's scanner, whose
    time grows with the square of it, reads it (5,000 ``[`` took 1.2 s)."""
    depth, quote, line_number = 0, "", 0
    for i, char in enumerate(text):
        if char == "\n":
            line_number += 1
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and (i == 0 or text[i - 1] in " \t[{,:\n"):
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise Refused(f"nested more than {MAX_DEPTH} levels deep", yaml.Mark("", i, line_number, 0, None, None))
        elif char in "]}":
            depth = max(0, depth - 1)


def line(node) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def tag_problem(node) -> str | None:
    """Why ``node``'s tag is refused (None when it is a core tag)."""
    if node.tag in CORE_TAGS:
        return None
    shown = node.tag.replace("tag:yaml.org,2002:", "!!")
    return f"the tag {shown} is not supported: write the value without it"


def key_text(node) -> str | None:
    """A mapping key as text; None when it is not a plain value."""
    if not isinstance(node, yaml.ScalarNode) or node.tag not in CORE_TAGS:
        return None
    return node.value


def scalar_value(node) -> tuple[Any, str | None]:
    """(value, None), or (None, why it cannot be read)."""
    try:
        return yaml.safe_load(yaml.serialize(node)), None
    except (yaml.YAMLError, ValueError, OverflowError, TypeError):
        shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        return None, f"{shown!r} cannot be read as a value"


class Reader:
    """YAML nodes to plain data (mappings, lists, values), with the node of each place
    (``("watches", 2, "schedule")``) and the problems found on the way, each with its line.

    A key given twice, a key that is not a plain name, a tag we refuse and a value that
    cannot be read are problems here; what the values mean is the settings model's concern.
    A null value counts as not given."""

    def __init__(self) -> None:
        self.nodes: dict[tuple, Any] = {}
        self.keys: dict[tuple, Any] = {}  # the key's node, for a place that is a key's value
        self.problems: list[tuple[Any, tuple, str]] = []  # (node, where, message)

    def read(self, node, where: tuple = ()) -> Any:
        self.nodes[where] = node
        problem = tag_problem(node)
        if problem:
            self.problems.append((node, where, problem))
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, where)
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, (*where, i)) for i, item in enumerate(node.value)]
        value, problem = scalar_value(node)
        if problem:
            self.problems.append((node, where, problem))
        return value

    def mapping(self, node, where: tuple) -> dict[str, Any]:
        found: dict[str, Any] = {}
        keys: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_text(key_node)
            if key is None:
                self.problems.append((key_node, where, "a key should be a plain name"))
                continue
            if key in keys:
                twice = f"is given twice (lines {line(keys[key])} and {line(key_node)}): keep one"
                self.problems.append((key_node, (*where, key), twice))
                found.pop(key, None)
                continue
            keys[key] = self.keys[(*where, key)] = key_node
            value = self.read(value_node, (*where, key))
            if value is not None:
                found[key] = value
        return found
