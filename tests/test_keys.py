"""Node keys: canonical, stable under formatting, and sensitive to everything that matters."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache.keys import canonical_json, node_key

json_scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(
    allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)

BASE = dict(kind="tts", version=1, provider="espeak", provider_version=1, model="espeak-ng",
            params={"voice": "en-us", "rate": 175}, inputs={"image": "ab" * 32})


def _shuffled(value):
    if isinstance(value, dict):
        return {k: _shuffled(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_shuffled(item) for item in value]
    return value


@given(json_values)
def test_dict_order_does_not_change_canonical_json(value):
    assert canonical_json(_shuffled(value)) == canonical_json(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_formatting_does_not_change_canonical_json(number):
    reparsed = float(json.loads(f"{number:.17g}"))  # the same float written another way
    assert canonical_json({"x": reparsed}) == canonical_json({"x": number})


def test_types_stay_distinct():
    rendered = {canonical_json(v) for v in (1, 1.5, "1", True, None, [1])}
    assert len(rendered) == 6


def test_non_finite_floats_are_refused():
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})


@given(st.dictionaries(st.sampled_from(["voice", "rate", "pitch", "seed"]), json_values, max_size=4))
def test_param_dict_order_does_not_change_the_key(params):
    assert node_key(**{**BASE, "params": params}) == node_key(**{**BASE, "params": _shuffled(params)})


@given(field=st.sampled_from(["kind", "model", "provider"]), suffix=st.text(min_size=1))
def test_any_change_of_kind_model_or_provider_changes_the_key(field, suffix):
    assert node_key(**{**BASE, field: BASE[field] + suffix}) != node_key(**BASE)


@given(st.text())
def test_any_change_of_prompt_changes_the_key(prompt):
    changed = {**BASE, "params": {**BASE["params"], "prompt": prompt}}
    other = {**BASE, "params": {**BASE["params"], "prompt": prompt + "."}}
    assert node_key(**changed) != node_key(**other)


@given(st.integers(min_value=0, max_value=2**20), st.integers(min_value=0, max_value=2**20))
def test_any_change_of_a_param_or_version_changes_the_key(a, b):
    if a == b:
        return
    keys = {node_key(**{**BASE, "params": {"rate": a}}), node_key(**{**BASE, "params": {"rate": b}})}
    versions = {node_key(**{**BASE, "version": a}), node_key(**{**BASE, "version": b})}
    assert len(keys) == 2 and len(versions) == 2


@given(st.binary(min_size=32, max_size=32))
def test_any_change_of_an_input_digest_changes_the_key(raw):
    digest = raw.hex()
    if digest == BASE["inputs"]["image"]:
        return
    assert node_key(**{**BASE, "inputs": {"image": digest}}) != node_key(**BASE)
