"""params.yaml, read only here: the whole file, a section or one dotted key, and its one schema (`validate`)."""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import paths


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int) -> dict:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load(path: str | Path | None = None) -> dict:
    """Every section of params.yaml (the project's by default), as a fresh dict."""
    p = Path(path) if path else paths.params_file()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no params.yaml (run from the project, or set I2S_ROOT)")
    return copy.deepcopy(_read(str(p), p.stat().st_mtime_ns))


def get(key: str, params: dict | None = None):
    """One value by its dotted key, e.g. get("lyric_model.hidden")."""
    node = load() if params is None else params
    for i, part in enumerate(key.split(".")):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"params.yaml has no {'.'.join(key.split('.')[:i + 1])!r}")
        node = node[part]
    return copy.deepcopy(node)


def section(name: str, params: dict | None = None) -> dict:
    """One section of params.yaml."""
    value = get(name, params)
    if not isinstance(value, dict):
        raise KeyError(f"params.yaml: {name!r} is not a section")
    return value


# ---- the one declared schema: every key of params.yaml, its type and range ---------------------------------------
class ParamsError(ValueError):
    """A params.yaml value that is unknown, missing, of the wrong type or out of range; the message names its key."""


@dataclass(frozen=True)
class Rule:
    """What one key may hold."""
    kind: str                          # int, number, flag (0/1), str, choice, path (a string; "" where allowed)
    low: float | None = None           # inclusive bounds (numbers), or of each element (lists)
    high: float | None = None
    choices: tuple = ()                # choice, or each element of a list of choices
    empty: bool = False                # path/str: "" allowed
    of: "Rule | None" = None           # list: the rule of each element
    keys: "dict | None" = None         # dict with fixed keys: each key's rule
    values: "Rule | None" = None       # dict with free keys: each value's rule
    optional: tuple = ()               # dict with fixed keys: keys that may be left out

    def want(self) -> str:
        """The rule in words, for the error message."""
        bounds = "" if self.low is None and self.high is None else (
            f" from {self.low:g} to {self.high:g}" if self.low is not None and self.high is not None
            else f" ≥ {self.low:g}" if self.low is not None else f" ≤ {self.high:g}")
        return {"int": f"a whole number{bounds}", "number": f"a number{bounds}", "flag": "0 or 1",
                "str": "a string" + (" (or empty)" if self.empty else ""),
                "choice": f"one of {list(self.choices)}", "path": "a path" + (" or \"\"" if self.empty else ""),
                "list": f"a list of {self.of.want() if self.of else 'values'}",
                "dict": "a mapping", "any": "anything"}[self.kind]


def _ok(rule: Rule, v) -> bool:
    if rule.kind == "any":
        return True
    is_int = isinstance(v, int) and not isinstance(v, bool)
    if rule.kind in ("int", "number", "flag"):
        if not (is_int or (rule.kind == "number" and isinstance(v, float) and math.isfinite(v))):
            return False
        if rule.kind == "flag":
            return v in (0, 1)
        return (rule.low is None or v >= rule.low) and (rule.high is None or v <= rule.high)
    if rule.kind in ("str", "path"):
        return isinstance(v, str) and (rule.empty or v.strip() != "")
    if rule.kind == "choice":
        return isinstance(v, str) and v in rule.choices
    if rule.kind == "list":
        return isinstance(v, list) and len(v) > 0
    return isinstance(v, dict)


def check_value(key: str, rule: Rule, v) -> None:
    """ParamsError when `v` breaks `rule` (recursively for lists and mappings); `key` names it in the message."""
    if not _ok(rule, v):
        raise ParamsError(f"params.yaml: {key} = {v!r}: must be {rule.want()}")
    if rule.kind == "list" and rule.of is not None:
        for i, x in enumerate(v):
            check_value(f"{key}[{i}]", rule.of, x)
    if rule.kind == "dict":
        if rule.keys is not None:
            check_mapping(key, rule.keys, v, rule.optional)
        elif rule.values is not None:
            for k, x in v.items():
                check_value(f"{key}.{k}", rule.values, x)


def check_mapping(key: str, rules: dict, values: dict, optional=()) -> None:
    """Every key of `values` known, every required key present, every value within its rule."""
    unknown = sorted(set(values) - set(rules))
    if unknown:
        raise ParamsError(f"params.yaml: {key}: unknown key(s) {unknown}; known: {sorted(rules)}")
    missing = sorted(set(rules) - set(values) - set(optional))
    if missing:
        raise ParamsError(f"params.yaml: {key}: missing key(s) {missing}")
    for k, v in values.items():
        check_value(f"{key}.{k}", rules[k], v)


def _cross_checks(p: dict) -> None:
    """Rules that tie keys together."""
    m = p.get("mrcca", {})
    for a, b in (("k_min", "k_max"), ("d_min", "d_max")):
        if a in m and b in m and m[a] > m[b]:
            raise ParamsError(f"params.yaml: mrcca.{a} = {m[a]} is above mrcca.{b} = {m[b]}")


def validate(p: dict | None = None) -> dict:
    """The whole of params.yaml against the schema (types, ranges, allowed names; unknown keys rejected); returns it."""
    p = load() if p is None else p
    from . import synth
    schema = SCHEMA()
    check_mapping("(top level)", {k: Rule("dict") for k in ("world", *schema)}, p)
    try:  # the world's rules are the generator's own (synth.check_params), so they are declared once
        synth.world_params(p["world"])
    except ParamsError as e:
        raise ParamsError(f"params.yaml: {e}") from None
    for section, rules in schema.items():
        check_mapping(section, rules, p[section])
    _cross_checks(p)
    return p


def rule(key: str) -> Rule:
    """The schema's rule of one dotted key (e.g. 'lyric_model.hidden', 'supplementary.variants.mood'); the world's
    keys, checked by synth.check_params, have none here (Rule('any'))."""
    section, _, rest = key.partition(".")
    if section == "world":
        return Rule("any")
    node = Rule("dict", keys=SCHEMA()[section])
    for part in rest.split(".") if rest else []:
        node = node.keys[part] if node.keys is not None else node.values
    return node


@functools.lru_cache(maxsize=1)
def SCHEMA() -> dict:  # noqa: N802 (a constant, built on first use: the choices come from the modules that own them)
    """The schema of params.yaml: section → key → Rule (the `world` section: `synth.check_params`)."""
    from . import detector, lyricdata, mrcca, networks
    nonneg, pos, frac = Rule("int", 0), Rule("int", 1), Rule("number", 0, 1)
    group, split = Rule("choice", choices=lyricdata.GROUPS), Rule("choice", choices=lyricdata.SPLITS)
    methods = Rule("list", of=Rule("choice", choices=tuple(networks.MODEL_CLASSES)))
    positive = Rule("number", 1e-12)
    return {
        "data_stats": {"data_root": Rule("path"), "world_truth": Rule("path", empty=True), "min_count": pos,
                       "per_song": pos, "dagger_test_songs": pos, "split_seed": nonneg, "more_than": nonneg},
        "tagger": {"scene_graphs": Rule("path"), "world_truth": Rule("path", empty=True),
                   "backbone": Rule("choice", choices=detector.BACKBONES), "checkpoint": Rule("path", empty=True),
                   "seed": nonneg, "iterations": pos, "batch_size": pos, "lr": positive, "min_size": Rule("int", 32),
                   "random_init_baseline": Rule("flag"), "deep_pool": nonneg, "n_jobs": pos,
                   "tag_songs_gt50": Rule("flag"), "top_k": pos, "threads": pos},
        "lyric_model": {"vectors": Rule("str"), "group": group, "split": split, "hidden": pos, "mlp_hidden": pos,
                        "max_tokens": nonneg, "loss": Rule("choice", choices=networks.LOSSES), "lr": positive,
                        "rho": Rule("number", 0, 0.999999), "eps": positive, "batch_pairs": Rule("int", 2),
                        "max_epochs": pos, "patience": pos, "val_fraction": Rule("number", 0.01, 0.5),
                        "chrono": nonneg, "seeds": pos, "seed": nonneg, "threads": pos},
        "tuning": {"split": split, "group": group, "seed": nonneg, "methods": methods,
                   "grid": Rule("dict", keys={"lr": Rule("list", of=positive), "hidden": Rule("list", of=pos),
                                              "mlp_hidden": Rule("list", of=pos)})},
        "planted": {"values": Rule("list", of=frac), "methods": methods, "seeds": pos, "seed": nonneg, "split": split,
                    "group": group},
        "order_probe": {"probe_values": Rule("list", of=frac), "probe_bilstm_at": Rule("list", of=frac),
                        "probe_epochs": pos, "probe_folds": Rule("int", 2), "probe_lr": positive,
                        "probe_seed": nonneg, "curve_sizes": Rule("list", of=pos), "curve_val": pos,
                        "curve_patience": nonneg},
        "attention": {"attention": pos, "top_k": pos, "pooling": Rule("choice", choices=networks.POOLINGS),
                      "seeds": pos, "seed": nonneg, "bootstrap": Rule("int", 100), "examples": nonneg},
        "song2image": {"group": group, "top_k": pos, "seeds": pos, "seed": nonneg, "examples": nonneg,
                       "top_images": pos},
        "supplementary": {"seeds": pos, "seed": nonneg,
                          "variants": Rule("dict", values=Rule("dict", keys={
                              "methods": methods, "groups": Rule("list", of=group),
                              "pooling": Rule("choice", choices=networks.POOLINGS),
                              "loss": Rule("choice", choices=networks.LOSSES)}, optional=("pooling", "loss")))},
        "mv_world": {"seed": nonneg, "scale": Rule("number", 0.001), "styles": pos, "label_fraction": frac,
                     "labelers": pos, "labeler_flip": frac, "prefer_rate": frac, "jobs": nonneg},
        "mrcca": {"mv_world_root": Rule("path"), "repeats": pos, "k_min": Rule("int", 2), "k_max": Rule("int", 2),
                  "d_for_k_sweep": pos, "d_min": pos, "d_max": pos, "k_for_d_sweep": Rule("int", 2),
                  "table1_k": Rule("int", 2), "table1_d": pos, "table1_repeats": pos,
                  "settings": Rule("list", of=Rule("list", of=Rule("int", 2))), "val_fraction": Rule("number", 0.01, 0.5),
                  "n_components": pos, "combine": Rule("choice", choices=("mean", "concat")),
                  "sigma": Rule("choice", choices=mrcca.SIGMAS), "seed": nonneg},
        "parallel": {"backend": Rule("choice", choices=("local", "dask")), "n_jobs": pos,
                     "scheduler": Rule("str", empty=True), "device": Rule("choice", choices=("auto", "cpu", "cuda"))},
    }
