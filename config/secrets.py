"""Provider keys: from the environment or `.env`, never from config files or parameters.

Every provider declares the variable its key comes from (`needs_key`, any name: a plug-in's
own, or `key_env: GROQ_API_KEY` for an OpenAI-compatible server). A key is read only where a
provider is built, checked before anything is spent, and never put into a cache key, a
manifest, a log line or a Prefect parameter; `redact` removes every declared key's value.
"""

from __future__ import annotations

import os
import re
import threading

from dotenv import dotenv_values

VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Filled as providers are built (tasks/providers/base.py), whatever their variables' names.
_declared: set[str] = set()
_lock = threading.Lock()


class MissingSecretError(LookupError):
    pass


def declare(variable: str) -> None:
    """Make `variable` a key: its value is redacted from every message from now on."""
    if not VARIABLE.match(variable):
        raise ValueError(f"{variable!r} is not an environment variable name")
    with _lock:
        _declared.add(variable)


def _values(variables: list[str]) -> list[str | None]:
    """Each variable's value: the environment first, then `.env` (read once per call)."""
    dotenv = None
    values = []
    for variable in variables:
        value = os.environ.get(variable)
        if not value:
            dotenv = dotenv_values(".env") if dotenv is None else dotenv
            value = dotenv.get(variable)
        values.append(value or None)
    return values


def secret(variable: str) -> str:
    """The value of the key `variable` (e.g. GEMINI_API_KEY), or an error naming it."""
    declare(variable)
    [value] = _values([variable])
    if not value:
        raise MissingSecretError(f"{variable} is not set (put it in the environment or .env)")
    return value


def present(variable: str) -> bool:
    """Whether the key `variable` is set (in the environment or .env)."""
    declare(variable)
    return _values([variable])[0] is not None


def redact(text: str, *others: str) -> str:
    """`text` with the value of every declared key, and `others` (tokens), replaced by ***: for
    error messages that quote what a server echoed back."""
    with _lock:
        variables = sorted(_declared)
    for value in sorted(filter(None, [*_values(variables), *others]), key=len, reverse=True):
        text = text.replace(value, "***")
    return text
