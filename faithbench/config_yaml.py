"""Strict YAML for suite files: UTF-8 only, no duplicate keys, bounded alias expansion.

``yaml.safe_load`` executes no code but is still too lenient for a benchmark definition:

- a duplicate key (``seeds: [0]`` ... ``seeds: [1]``) silently keeps the last value;
- aliases expand without bound: nine nested anchors of ten aliases each (555 bytes) are a
  billion nodes once written out (a 22 MB ``manifest.json`` in issue 17's report, or no end);
- bytes that are not UTF-8 raise ``UnicodeDecodeError`` with no file name.

:func:`load_yaml_file` refuses all three with :class:`YAMLFileError`, whose message names the
file and the line (a boolean or a string where a number belongs is refused by the suite's
fields, :data:`faithbench.configurable.Int` and ``Float``). The budget: aliases may add at most
:data:`ALIAS_BUDGET` nodes to the document beyond those written in it (a suite is a few hundred
nodes; anchors that share a recipe between models add a few dozen).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

ALIAS_BUDGET = 10_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLFileError(ValueError):
    """A YAML file that cannot be read as a suite; the message names the file (and line)."""


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises on a key written twice in one mapping (merge keys ``<<``
    may still supply defaults that the mapping overrides) and on a null key (``~: 3``)."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            merges = 0
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    merges += 1
                    if merges > 1:  # a fuzzing review: the later one won without a word
                        raise ConstructorError(None, None, "a merge key << written twice in one mapping (the later "
                                               "would win without a word); keep one", key_node.start_mark)
                    continue
                key = self.construct_object(key_node, deep=True)
                if key is None:  # a review: "d25.yaml: : Keys should be strings", with no key and no line
                    raise ConstructorError(None, None, "a null key (~, null or nothing before the colon); expected a "
                                           "key name", key_node.start_mark)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise ConstructorError(None, None, f"duplicate key {key!r} (first written at line {first + 1})",
                                           key_node.start_mark)
                seen[key] = key_node.start_mark.line
                if isinstance(key, bool) and key_node.tag == "tag:yaml.org,2002:bool":  # a review: 'on: 1' was '[1]'
                    raise ConstructorError(None, None, f"the key {key_node.value!r} is read by YAML as {key}; quote it "
                                           f"('{key_node.value}') if it is a name", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Node) -> int:
        """YAML 1.2's integers only: 1.1's forms read silently as other numbers (a fuzzing review: ``samples: 010``
        was 8, ``1:30`` 90, ``1_0`` 10) are refused, naming what 1.1 would read."""
        text = str(node.value).lstrip("+-")
        if ":" in text or "_" in text or text.startswith(("0b", "0B")) or (len(text) > 1 and text[0] == "0"
                                                                           and text[1:].isdigit()):
            read = super().construct_yaml_int(node)
            raise ConstructorError(None, None, f"{node.value!r} is a YAML 1.1 number form that reads as {read}; "
                                   f"write the number plainly (or quote it, if it is text)", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: Node) -> float:
        """As :meth:`construct_yaml_int`: 1.1's base-60 and underscored floats (``1:30.5``, ``1_0.5``) are refused."""
        if ":" in str(node.value) or "_" in str(node.value):
            raise ConstructorError(None, None, f"{node.value!r} is a YAML 1.1 number form that reads as "
                                   f"{super().construct_yaml_float(node)}; write the number plainly (or quote it, if "
                                   "it is text)", node.start_mark)
        return super().construct_yaml_float(node)


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_yaml_float)
# YAML 1.2's floats: PyYAML (YAML 1.1) reads 1e-3 as the string '1e-3', which a suite's lr then refused as
# "expected a number, got str '1e-3'" (a review); an exponent without a decimal point is a float here too
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
    r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def check_alias_expansion(root: Node, budget: int = ALIAS_BUDGET) -> None:
    """Raise ``ValueError`` when the document, with every alias written out, has more than
    ``budget`` nodes beyond its distinct nodes. Costs O(distinct nodes + budget) steps, whatever
    the expansion (a recursive alias included)."""
    distinct: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in distinct:
            distinct.add(id(node))
            stack.extend(_children(node))
    limit = len(distinct) + budget
    expanded = 0
    walk: list[tuple[Node, str]] = [(root, "")]
    while walk:
        node, top = walk.pop()
        expanded += 1
        if expanded > limit:
            where = f"{top}: " if top else ""
            raise ValueError(f"{where}YAML aliases expand the suite beyond {budget} extra nodes "
                             f"(near line {node.start_mark.line + 1}); write the values out or use fewer aliases")
        if node is root and isinstance(node, MappingNode):
            walk.extend((n, str(k.value)) for k, v in node.value for n in (k, v))
        else:
            walk.extend((n, top) for n in _children(node))


def load_yaml_file(path: Path) -> Any:
    """Parse one YAML file strictly (see the module docstring); ``OSError`` passes through."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YAMLFileError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                            f"{exc.start}); save the suite as UTF-8") from None
    loader = None
    try:
        loader = StrictLoader(text)  # the reader rejects control characters here already
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            check_alias_expansion(node)
        except ValueError as exc:
            raise YAMLFileError(f"{path}: {exc}") from None
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YAMLFileError(f"{path}:{where} malformed YAML: {problem}") from None
    except RecursionError:  # a fuzzing review: 5000 nested lists were exit 1, not a bad-input error
        raise YAMLFileError(f"{path}: malformed YAML: values nested too deeply to read (a suite nests a few "
                            "levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def yaml_description(path: Path) -> str:
    """The ``description`` of a suite file, whitespace collapsed ("" without one or when unreadable):
    ``faithbench list suites``."""
    try:
        text = (yaml.safe_load(path.read_text()) or {}).get("description") or ""
    except (OSError, yaml.YAMLError, AttributeError, RecursionError):
        return ""
    return " ".join(str(text).split())
