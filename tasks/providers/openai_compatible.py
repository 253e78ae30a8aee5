"""A planner on any OpenAI-compatible chat completions API: OpenAI, Ollama, llama.cpp server, vLLM.

Local servers need no key: `key_env=None` sends a placeholder instead (the client insists on
one), never a real key. The SDK's retries are off (`max_retries=0`): `with_retries` decides.
The reply is asked for as `json_schema` first; a server that refuses that response format is
asked for `json_object` for the rest of the plan, and the reply is validated all the same.
"""

from __future__ import annotations

import json
import re
import time
from typing import Literal

import openai
from pydantic import field_validator

from config.secrets import VARIABLE, declare, secret
from tasks.providers.base import Planner, PlanResult, ProviderError, TransientProviderError, Usage
from tasks.providers.draft import reply_schema
from tasks.providers.planning import plan_with_one_repair
from tasks.providers.retry import http_error, with_retries
from tasks.storyboard import VideoRequest

NO_KEY = "no-key"  # what a keyless local server is sent
SYSTEM = ("You plan short narrated videos. Reply with one JSON object, no prose and no code "
          "fences, that matches this JSON schema:\n")
ResponseFormat = Literal["json_object", "json_schema", "text"]


class _SchemaRefused(Exception):
    """The server does not take `json_schema` as a response format."""


class OpenAICompatiblePlanner(Planner):
    name = "openai-compatible"
    version = 2
    needs_key = "OPENAI_API_KEY"  # per instance: the `key_env` option
    transport_options = Planner.transport_options | {"key_env"}

    class Options(Planner.Options):
        model: str = "gpt-4o-mini"
        base_url: str | None = "https://api.openai.com/v1"  # e.g. http://localhost:11434/v1
        key_env: str | None = "OPENAI_API_KEY"  # None: a server that needs no key
        # json_schema constrains the reply (json_object where the server refuses it);
        # json_object only asks for JSON; text asks for nothing (the schema is in the prompt
        # either way).
        response_format: ResponseFormat = "json_schema"

        @field_validator("key_env")
        @classmethod
        def _variable_name(cls, value: str | None) -> str | None:
            if value is not None and not VARIABLE.match(value):
                raise ValueError(f"{value!r} is not an environment variable name")
            return value

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        self.needs_key = self.options.key_env
        if self.needs_key:
            declare(self.needs_key)

    def plan(self, request: VideoRequest) -> PlanResult:
        key = secret(self.options.key_env) if self.options.key_env else NO_KEY
        deadline = time.monotonic() + self.options.deadline_s
        spent = {"calls": 0, "tokens": 0}  # across the first ask and the repair: one budget
        schema = reply_schema(request)
        asking = {"format": self.options.response_format}  # json_object once json_schema is refused
        with openai.OpenAI(base_url=self.options.base_url, api_key=key,
                           timeout=self.options.timeout_s, max_retries=0) as client:

            def once(prompt: str) -> str:
                spent["calls"] += 1
                try:
                    return self._complete(client, prompt, request.seed, key, spent, schema,
                                          asking["format"])
                except _SchemaRefused:  # asked again at once, and never again this plan
                    asking["format"] = "json_object"
                    return once(prompt)

            def ask(prompt: str) -> str:
                return with_retries(lambda: once(prompt),
                                    attempts=max(1, self.options.attempts - spent["calls"]),
                                    deadline_s=max(deadline - time.monotonic(), 0.001))

            storyboard, adjustments = plan_with_one_repair(ask, request, self.name)
        return PlanResult(storyboard=storyboard, usage=Usage(tokens=spent["tokens"]),
                          adjustments=adjustments)

    def _complete(self, client: openai.OpenAI, prompt: str, seed: int, key: str, spent: dict,
                  schema: dict, response_format: ResponseFormat) -> str:
        try:
            completion = client.chat.completions.create(
                model=self.model, seed=seed,
                response_format=_response_format(response_format, schema),
                messages=[{"role": "system", "content": SYSTEM + json.dumps(schema)},
                          {"role": "user", "content": prompt}])
        except openai.BadRequestError as error:
            if response_format == "json_schema" and _refuses_schema(error):
                raise _SchemaRefused from None
            raise http_error(self.name, error.status_code, _scrub(error.message, key),
                             error.response.headers.get("retry-after")) from None
        except openai.APIStatusError as error:
            raise http_error(self.name, error.status_code, _scrub(error.message, key),
                             error.response.headers.get("retry-after")) from None
        except openai.APIConnectionError as error:  # timeouts included
            raise TransientProviderError(f"{self.name}: {type(error).__name__}: "
                                         f"{_scrub(error.message, key)}") from None
        except ValueError:  # a body that claims to be JSON and is not
            raise ProviderError(f"{self.name}: unreadable reply") from None
        try:
            content = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise ProviderError(f"{self.name}: the reply has no message") from None
        usage = getattr(completion, "usage", None)
        spent["tokens"] += getattr(usage, "total_tokens", None) or 0
        return _unfenced(content if isinstance(content, str) else "")  # empty: repaired once


def _response_format(response_format: ResponseFormat, schema: dict) -> dict | openai.Omit:
    if response_format == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "storyboard", "schema": schema}}
    if response_format == "json_object":
        return {"type": "json_object"}
    return openai.omit


def _refuses_schema(error: openai.BadRequestError) -> bool:
    """Whether a 400 is the server refusing `json_schema` output (OpenAI names the parameter;
    llama.cpp, vLLM and Ollama say it in the message)."""
    said = f"{error.param or ''} {error.message}".lower()
    return "response_format" in said or "json_schema" in said


def _unfenced(text: str) -> str:
    """The JSON inside a ```json fence, which small models add even when told not to."""
    match = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", text, re.DOTALL)
    return match.group(1) if match else text


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "***") if key and key != NO_KEY else text
