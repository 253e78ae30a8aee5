"""What a run would refuse, refused before one is created: the one check behind the CLI's
exit 2 and the API's 422. Each problem names its field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from config.bible import BibleError, cast_and_places
from config.settings import Settings
from flows.creative import Creative
from tasks.music import TrackError
from tasks.storyboard import VideoRequest


class Refused(ValueError):
    """Input that cannot run: `problems` are (field, message) pairs, the first one said."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems or [("request", "invalid")]
        super().__init__("{}: {}".format(*self.problems[0]))


def problems(errors: Iterable[dict], prefix: str = "", root: str = "request",
             renamed: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Pydantic's errors as (field, message): the field a dotted path under `prefix` (`root`
    when the whole input is wrong), the message without pydantic's "Value error, "."""
    found = []
    for error in errors:
        if error.get("type") == "json_invalid":  # its location is a character of the body
            found.append((prefix or root, f"not valid JSON ({error.get('msg')})"))
            continue
        where = [(renamed or {}).get(str(part), str(part)) for part in error.get("loc", ())
                 if part not in ("", "body")]  # FastAPI puts a request body under "body"
        field = ".".join(filter(None, [prefix, *where])) or root
        found.append((field, str(error.get("msg", "invalid")).removeprefix("Value error, ")))
    return found


def video_request(settings: Settings, cast: Iterable[str] = (), places: Iterable[str] = (),
                  renamed: dict[str, str] | None = None, creative: Creative = Creative(),
                  **fields: Any) -> tuple[VideoRequest, list[str]]:
    """The request as the planner reads it, with its cast and places by id, its creative
    choices read, and its voice checked against its language; returns the warnings to show."""
    try:
        characters, locations = cast_and_places(settings, cast, places)
        chosen = creative.request_fields()
    except (BibleError, TrackError) as error:  # it names its field (or a file) first
        field, _, message = str(error).partition(": ")
        raise Refused([(field, message)]) from None
    try:
        request = VideoRequest(**fields, **chosen, characters=characters, locations=locations)
    except ValidationError as error:
        raise Refused(problems(error.errors(), renamed=renamed)) from None
    return request, voice(request.voice, request.language, settings)


def voice(name: str | None, language: str, settings: Settings) -> list[str]:
    """A voice that cannot speak the language is refused; one no provider can tell about is
    a warning, returned."""
    from tasks.preflight import VoiceMismatch, check_voice

    try:
        return check_voice(name, language, settings)
    except VoiceMismatch as error:
        raise Refused([("voice", str(error).removeprefix("voice: "))]) from None
