"""Provider keys: from the environment or `.env`, never from config files or parameters.

A key is read only where a provider is built, checked before anything is spent, and never
put into a cache key, a manifest, a log line or a Prefect parameter.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MissingSecretError(LookupError):
    pass


class Secrets(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    gemini_api_key: SecretStr | None = None
    elevenlabs_api_key: SecretStr | None = None
    replicate_api_token: SecretStr | None = None
    openai_api_key: SecretStr | None = None


def secret(variable: str) -> str:
    """The value of the key `variable` (e.g. GEMINI_API_KEY), or an error naming it."""
    value = getattr(Secrets(), variable.lower(), None)
    if value is None or not value.get_secret_value():
        raise MissingSecretError(f"{variable} is not set (put it in the environment or .env)")
    return value.get_secret_value()


def redact(text: str, *others: str) -> str:
    """`text` with every key reelflow knows, and `others` (tokens), replaced by ***: for error
    messages that quote what a server echoed back."""
    values = [value.get_secret_value() for value in Secrets().__dict__.values()
              if isinstance(value, SecretStr)]
    for value in sorted(filter(None, [*values, *others]), key=len, reverse=True):
        text = text.replace(value, "***")
    return text
