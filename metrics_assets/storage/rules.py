"""Attribution rules: which metered object (type, id, owner) a key belongs to.

A rule is a key pattern with named parts, ``uploads/{owner}/{object_id}/**`` -> UPLOAD. Rules
compile to anchored regular expressions (RE2-compatible, so DuckDB and Python agree) and are
applied set-based in DuckDB: one ``CASE`` over the rules in order picks the first match, and
``regexp_extract`` takes the parts. No Python runs per key.

``object_location`` is where the metered object lives: ``s3://bucket/`` plus the part of the
key the pattern fixes before its trailing wildcard (``s3://b/uploads/alice/u1``). A key no
rule matches is UNATTRIBUTED for its bucket: object_id = the bucket, owner NULL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from metrics_assets.settings import ConfigurationError

UNATTRIBUTED = "UNATTRIBUTED"
USAGE_TYPE = "STORAGE"
_META = set(".^$*+?()[]{}|\\")
_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Rule:
    pattern: str
    metered_object_type: str
    bucket: str | None = None

    @property
    def literal_prefix(self) -> str:
        """The pattern's leading literal text: a cheap pre-filter before the regex."""
        return re.split(r"[{*]", self.pattern, maxsplit=1)[0]

    def compiled(self) -> tuple[str, int, int, int]:
        """(regex, group of owner, group of object_id, group of the location prefix)."""
        return compile_pattern(self.pattern)


def compile_pattern(pattern: str) -> tuple[str, int, int, int]:
    """``uploads/{owner}/{object_id}/**`` -> ``^((uploads/([^/]+)/([^/]+))(?:/.*)?)$``-like regex.
    Group 1 is the location part (everything before a trailing ``/**``)."""
    body = pattern
    tail = ""
    if body.endswith("/**"):
        body, tail = body[:-3], "(?:/.*)?"
    elif body.endswith("**"):
        body, tail = body[:-2], ".*"
    out: list[str] = []
    groups: dict[str, int] = {}
    next_group = 2
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "{":
            end = body.find("}", i)
            if end < 0:
                raise ConfigurationError(f"rule pattern {pattern!r}: unclosed '{{'")
            name = body[i + 1 : end]
            if name not in ("owner", "object_id"):
                raise ConfigurationError(f"rule pattern {pattern!r}: unknown part {{{name}}} (use owner, object_id)")
            if name in groups:
                raise ConfigurationError(f"rule pattern {pattern!r}: {{{name}}} appears twice")
            groups[name] = next_group
            next_group += 1
            out.append("([^/]+)")
            i = end + 1
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append("\\" + ch if ch in _META else ch)
            i += 1
    missing = {"owner", "object_id"} - set(groups)
    if missing:
        raise ConfigurationError(f"rule pattern {pattern!r} lacks {', '.join('{' + m + '}' for m in sorted(missing))}")
    regex = "^(" + "".join(out) + ")" + tail + "$"
    return regex, groups["owner"], groups["object_id"], 1


def parse_rules(document: object, source: str = "rules") -> list[Rule]:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ConfigurationError(f"{source}: expected a mapping with a 'rules' list")
    rules = []
    for n, item in enumerate(document["rules"], 1):
        if not isinstance(item, dict) or "pattern" not in item or "metered_object_type" not in item:
            raise ConfigurationError(f"{source}: rule {n} needs 'pattern' and 'metered_object_type'")
        kind = str(item["metered_object_type"])
        if not _TYPE_RE.match(kind) or kind == UNATTRIBUTED:
            raise ConfigurationError(f"{source}: rule {n}: metered_object_type {kind!r} must be UPPER_CASE, not {UNATTRIBUTED}")
        rule = Rule(str(item["pattern"]), kind, item.get("bucket"))
        try:
            compile_pattern(rule.pattern)  # fail now, naming the file and the rule
        except ConfigurationError as error:
            raise ConfigurationError(f"{source}: rule {n}: {error}") from error
        rules.append(rule)
    return rules


def load_rules(path: Path) -> list[Rule]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"STORAGE_RULES_FILE={path}: cannot read it ({error.strerror})") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"STORAGE_RULES_FILE={path}: not valid YAML ({error})") from error
    return parse_rules(document, f"STORAGE_RULES_FILE={path}")


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def attribution_select(rules: list[Rule], source: str, extra_columns: str = "") -> str:
    """DuckDB SQL over ``source`` (columns bucket, key, ...) adding metered_object_type,
    object_id, owner and object_location: first matching rule wins, else UNATTRIBUTED."""
    whens = []
    for n, rule in enumerate(rules):
        regex, *_ = rule.compiled()
        conds = []
        if rule.bucket:
            conds.append(f"bucket = {_lit(rule.bucket)}")
        if rule.literal_prefix:
            conds.append(f"starts_with(key, {_lit(rule.literal_prefix)})")
        conds.append(f"regexp_full_match(key, {_lit(regex)})")
        whens.append(f"WHEN {' AND '.join(conds)} THEN {n}")
    rule_case = f"CASE {' '.join(whens)} ELSE -1 END" if whens else "-1"

    def part(which: int, default: str) -> str:
        if not rules:
            return default
        arms = []
        for n, rule in enumerate(rules):
            regex, g_owner, g_object, g_loc = rule.compiled()
            group = (g_owner, g_object, g_loc)[which]
            value = f"regexp_extract(key, {_lit(regex)}, {group})"
            if which == 2:
                value = f"'s3://' || bucket || '/' || {value}"
            arms.append(f"WHEN {n} THEN {value}")
        return f"CASE rule_no {' '.join(arms)} ELSE {default} END"

    types = " ".join(f"WHEN {n} THEN {_lit(r.metered_object_type)}" for n, r in enumerate(rules))
    type_case = f"CASE rule_no {types} ELSE '{UNATTRIBUTED}' END" if rules else f"'{UNATTRIBUTED}'"
    return f"""
        SELECT {extra_columns + ', ' if extra_columns else ''}bucket, key,
               {type_case} AS metered_object_type,
               {part(1, 'bucket')} AS object_id,
               {part(0, 'CAST(NULL AS VARCHAR)')} AS owner,
               {part(2, "'s3://' || bucket || '/'")} AS object_location
        FROM (SELECT *, {rule_case} AS rule_no FROM {source}) AS numbered
    """


def attribute_in_python(rules: list[Rule], bucket: str, key: str) -> tuple[str, str, str | None]:
    """The same attribution for one key, for tests and tools (never per key in assets)."""
    for rule in rules:
        if rule.bucket and rule.bucket != bucket:
            continue
        regex, g_owner, g_object, _ = rule.compiled()
        m = re.fullmatch(regex, key)
        if m:
            return rule.metered_object_type, m.group(g_object), m.group(g_owner)
    return UNATTRIBUTED, bucket, None
