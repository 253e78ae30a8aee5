"""The only hashing in reelflow: canonical JSON, content digests, and node keys."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def canonical_json(value: Any) -> str:
    """Serialise `value` the one way every key is built from.

    Contract (changing it changes every key, so every cached artifact would be redone):
    keys sorted, no whitespace, UTF-8 kept as is, floats as their shortest round-trip repr (-0.0 as 0.0),
    tuples as lists, pydantic models as their JSON dump. Types stay distinct: `1`, `1.5`,
    `"1"` and `true` never serialise alike. NaN and infinities are refused.
    """
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("canonical_json needs string keys")
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("canonical_json refuses NaN and infinities")
        return value + 0.0  # -0.0 equals 0.0, so it must serialise alike
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"canonical_json cannot serialise {type(value).__name__}")


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def node_key_parts(
    *,
    kind: str,
    version: int,
    provider: str,
    provider_version: int,
    model: str,
    params: dict,
    inputs: dict[str, str],
) -> dict:
    """Everything that decides a node's output. Inputs are content digests, never names."""
    return {
        "kind": kind,
        "version": version,
        "provider": provider,
        "provider_version": provider_version,
        "model": model,
        "params": params,
        "inputs": inputs,
    }


def node_key(**parts: Any) -> str:
    """The cache key of a node: sha256 of the canonical JSON of its `node_key_parts`."""
    return hashlib.sha256(canonical_json(node_key_parts(**parts)).encode()).hexdigest()
