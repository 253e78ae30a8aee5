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
# The built-in providers' keys; registering a provider adds its own.
_declared = {"GEMINI_API_KEY", "ELEVENLABS_API_KEY", "REPLICATE_API_TOKEN", "OPENAI_API_KEY"}
_lock = threading.Lock()


class MissingSecretError(LookupError):
    pass


def declare(variable: str) -> None:
    """Make `variable` a key: its value is redacted from every message from now on."""
    if not VARIABLE.match(variable):
        raise ValueError(f"{variable!r} is not an environment variable name")
    with _lock:
        _declared.add(variable)


def _value(variable: str) -> str | None:
    return os.environ.get(variable) or dotenv_values(".env").get(variable) or None


def secret(variable: str) -> str:
    """The value of the key `variable` (e.g. GEMINI_API_KEY), or an error naming it."""
    declare(variable)
    value = _value(variable)
    if not value:
        raise MissingSecretError(f"{variable} is not set (put it in the environment or .env)")
    return value


def redact(text: str, *others: str) -> str:
    """`text` with the value of every declared key, and `others` (tokens), replaced by ***: for
    error messages that quote what a server echoed back."""
    with _lock:
        variables = sorted(_declared)
    values = [_value(variable) for variable in variables]
    for value in sorted(filter(None, [*values, *others]), key=len, reverse=True):
        text = text.replace(value, "***")
    return text
