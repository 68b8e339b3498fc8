"""Class mapping: from a source's class names (and file-name prefixes) to the 18 pool classes.

A mapping is resolved in this order, first match wins:

1. the user's mapping (a YAML file or ``--map SOURCE=CLASS`` options);
2. the built-in mapping for the public sources (:data:`DEFAULT_MAPPING`: PBC folders, BCCD and
   TXL-PBC label names);
3. the taxonomy's own names and aliases (``"Platelets"`` -> ``Platelet``).

Anything else is *unmapped*: skipped and reported, never merged into a neighbouring class.
A value of ``null`` (or ``skip``) skips a source class on purpose (PBC's immature granulocytes,
which the taxonomy has no class for).

Mapping file (YAML)::

    classes:
      basophil: Basophil
      ig: null                       # skip on purpose
      neutrophil:                    # by file-name prefix (text before the first "_")
        SNE: Segmented neutrophil
        BNE: Band cell
        "*": null                    # files with any other prefix

On the command line, ``--map basophil=Basophil`` or ``--map neutrophil/SNE=Segmented neutrophil``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..taxonomy import ALIASES, canonical_class

SKIP_WORDS = ("", "null", "none", "skip", "~")

#: source name (lower case) -> pool class, None (skip) or {file prefix (upper) or "*": class}
DEFAULT_MAPPING: dict[str, str | dict[str, str | None] | None] = {
    "basophil": "Basophil",
    "eosinophil": "Eosinophil",
    "erythroblast": "Nucleated RBC",
    "lymphocyte": "Lymphocyte",
    "monocyte": "Monocyte",
    "platelet": "Platelet",
    "platelets": "Platelet",
    "rbc": "RBC",
    "neutrophil": {"SNE": "Segmented neutrophil", "BNE": "Band cell"},
}


@dataclass(frozen=True)
class ClassMapping:
    """Resolves source class names to pool classes.

    Attributes
    ----------
    rules : dict
        source name (lower case) -> pool class, None (skip on purpose), or a dict
        ``{FILE PREFIX or "*": pool class or None}``.
    use_defaults : bool
        Fall back to :data:`DEFAULT_MAPPING` and the taxonomy aliases.
    """

    rules: Mapping[str, str | Mapping[str, str | None] | None] = field(default_factory=dict)
    use_defaults: bool = True

    def resolve(self, name: str, filename: str | None = None) -> tuple[str | None, str]:
        """The pool class of source class ``name`` (and file ``filename``).

        Returns
        -------
        (str or None, str)
            The pool class (None when skipped) and the key it was resolved by, e.g.
            ``"neutrophil/SNE"`` or ``"ig"``; the key names the skip in reports.
        """
        key = name.strip().lower()
        tables = [self.rules] + ([DEFAULT_MAPPING] if self.use_defaults else [])
        prefix = _prefix(filename)
        star: tuple[str | None, str] | None = None
        for table in tables:
            if key not in table:
                continue
            rule = table[key]
            if not isinstance(rule, Mapping):
                return rule, key
            # a specific prefix wins over any table's "*"; the first table's "*" wins otherwise
            if prefix in rule:
                return rule[prefix], f"{key}/{prefix}"
            if "*" in rule and star is None:
                star = (rule["*"], f"{key}/*")
        if star is not None:
            return star
        if any(key in t for t in tables):
            return None, f"{key}/{prefix or '?'}"
        if self.use_defaults and key in ALIASES:
            return ALIASES[key], key
        return None, key

    def merged(self, other: ClassMapping) -> ClassMapping:
        """This mapping with ``other``'s rules taking precedence."""
        rules = dict(self.rules)
        for k, v in other.rules.items():
            if isinstance(v, Mapping) and isinstance(rules.get(k), Mapping):
                rules[k] = {**rules[k], **v}  # type: ignore[dict-item]
            else:
                rules[k] = v
        return ClassMapping(rules, self.use_defaults and other.use_defaults)


def _prefix(filename: str | None) -> str:
    if not filename:
        return ""
    return Path(filename).stem.split("_", 1)[0].upper()


def _target(value: object, where: str) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in SKIP_WORDS):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a class name or null, got {value!r}")
    try:
        return canonical_class(value)
    except ConfigError:
        raise ConfigError(
            f"{where}: {value!r} names no pool class (see `hemosynth pools classes`)"
        ) from None


def load_mapping(path: str | os.PathLike[str]) -> ClassMapping:
    """Read a mapping file (YAML, see the module docstring).

    Raises
    ------
    ConfigError
        If the file is unreadable or a value names no pool class, naming file and key.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read mapping file ({e})") from None
    if isinstance(data, dict) and "classes" in data:
        use_defaults = bool(data.get("defaults", True))
        data = data["classes"]
    else:
        use_defaults = True
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a 'classes' mapping of source name -> class")
    rules: dict[str, str | dict[str, str | None] | None] = {}
    for k, v in data.items():
        where = f"{path}: {k}"
        if isinstance(v, dict):
            rules[str(k).strip().lower()] = {
                str(p).strip().upper() if str(p) != "*" else "*": _target(t, f"{where}/{p}")
                for p, t in v.items()
            }
        else:
            rules[str(k).strip().lower()] = _target(v, where)
    return ClassMapping(rules, use_defaults)


def parse_map_options(options: Iterable[str]) -> ClassMapping:
    """Parse ``SOURCE=CLASS`` / ``SOURCE/PREFIX=CLASS`` command-line options.

    Raises
    ------
    ConfigError
        If an option has no ``=`` or its class is not a pool class.
    """
    rules: dict[str, str | dict[str, str | None] | None] = {}
    for opt in options:
        if "=" not in opt:
            raise ConfigError(f"--map {opt!r}: expected SOURCE=CLASS")
        src, cls = (s.strip() for s in opt.split("=", 1))
        target = _target(cls, f"--map {opt!r}")
        if "/" in src:
            name, prefix = src.split("/", 1)
            sub = rules.setdefault(name.strip().lower(), {})
            if not isinstance(sub, dict):
                raise ConfigError(f"--map {opt!r}: {name} is already mapped as a whole")
            sub[prefix.strip().upper() if prefix.strip() != "*" else "*"] = target
        else:
            rules[src.lower()] = target
    return ClassMapping(rules)
