"""The story bible: character and location profiles, one YAML file each.

The shipped examples live in config/characters/ and config/locations/; a user's folders
(`--characters DIR`, `--locations DIR`, REELFLOW_CHARACTERS, REELFLOW_LOCATIONS) add more.
Adding a character is a file drop. Pictures named in a profile must lie beside it (no `../`,
no absolute paths): the profile folder is what a person shares. Every problem is one line
naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import yaml
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ValidationError

from cache.keys import file_digest
from config.catalog import CONFIG_DIR
from tasks.storyboard import Character, DirectorLook, Location, Picture

MAX_PICTURE_BYTES = 20 * 1024 * 1024
MAX_PICTURE_SIDE = 8192
SHIPPED = {Character: CONFIG_DIR / "characters", Location: CONFIG_DIR / "locations",
           DirectorLook: CONFIG_DIR / "directors"}
# What a profile of each kind must say (the rest has defaults, or is checked by its model).
REQUIRED = {Character: ("id", "name"), Location: ("id", "description"),
            DirectorLook: ("id", "name", "prompt")}
Profile = Character | Location | DirectorLook


class BibleError(ValueError):
    """A profile that cannot be used: one line naming its file and field."""


def load_profiles(model: type[Profile], folders: Iterable[Path] = ()) -> dict[str, Profile]:
    """Every profile of `model`'s kind in the shipped folder and `folders`, by id."""
    profiles: dict[str, Profile] = {}
    found_in: dict[str, Path] = {}
    for folder in [SHIPPED[model], *folders]:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise BibleError(f"{folder}: no such folder of {model.__name__.lower()} profiles")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            profile = read_profile(model, path)
            if profile.id in profiles:
                raise BibleError(f"{path}: id: {profile.id!r} is also the id of {found_in[profile.id]}")
            profiles[profile.id], found_in[profile.id] = profile, path
    return profiles


def pick(profiles: dict[str, BaseModel], ids: Iterable[str], field: str, noun: str) -> list:
    """The profiles named by `ids`, in that order; an unknown id is an error naming the known."""
    chosen = []
    for wanted in ids:
        if wanted not in profiles:
            raise BibleError(f"{field}: no {noun} {wanted!r} "
                             f"(known: {', '.join(sorted(profiles)) or 'none'})")
        chosen.append(profiles[wanted])
    return chosen


def read_profile(model: type[Profile], path: Path) -> Profile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BibleError(f"{path}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        raise BibleError(f"{path}: not valid YAML: {_first_line(error)}") from None
    if not isinstance(data, dict):
        raise BibleError(f"{path}: a profile is a mapping of fields (id, name, ...)")
    for field in REQUIRED[model]:
        if field not in data:
            raise BibleError(f"{path}: {field}: missing")
    if "references" in data:
        data["references"] = [_picture(path, f"references.{i}", name)
                              for i, name in enumerate(_as_list(path, data["references"]))]
    if model is Character and "sprites" in data:
        if not isinstance(data["sprites"], dict):
            raise BibleError(f"{path}: sprites: a mapping of talking and listening to pictures")
        data["sprites"] = {pose: _picture(path, f"sprites.{pose}", name)
                           for pose, name in data["sprites"].items()}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "profile"
        raise BibleError(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}") from None


def _as_list(path: Path, value) -> list:
    if not isinstance(value, list):
        raise BibleError(f"{path}: references: a list of picture files")
    return value


def _picture(profile: Path, field: str, name) -> dict:
    """A picture beside `profile`, checked: inside the folder, an image, not too big."""
    if not isinstance(name, str) or not name:
        raise BibleError(f"{profile}: {field}: a picture file name")
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or Path(name).is_absolute():
        raise BibleError(f"{profile}: {field}: {name!r} leaves the profile's folder; put the "
                         "picture beside the profile")
    return user_picture(profile.parent / relative, f"{profile}: {field}: {name!r}").model_dump()


def user_picture(path: Path, where: str) -> Picture:
    """A picture a person gave, checked: a file, an image, not too big; `where` names it in
    the one line a problem is."""
    if not path.is_file():
        raise BibleError(f"{where} does not exist")
    if path.stat().st_size > MAX_PICTURE_BYTES:
        raise BibleError(f"{where} is over 20 MB")
    check_picture(path, where)
    return Picture(path=str(path.resolve()), digest=file_digest(path))


def check_picture(path: Path, where: str) -> None:
    """`path` is an image no side of which is over MAX_PICTURE_SIDE pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise BibleError(f"{where} is not a picture ({_first_line(error)})") from None
    if max(width, height) > MAX_PICTURE_SIDE:
        raise BibleError(f"{where} is {width}x{height} px, over {MAX_PICTURE_SIDE} px")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def cast_and_places(settings, cast: Iterable[str] = (), places: Iterable[str] = ()
                    ) -> tuple[list[Character], list[Location]]:
    """The profiles of `cast` and `places` (ids, in order) from the shipped folders and the
    settings' folders. Profiles are read only when some are asked for."""
    cast, places = list(cast), list(places)
    characters = (pick(load_profiles(Character, settings.characters), cast, "cast", "character")
                  if cast else [])
    locations = (pick(load_profiles(Location, settings.locations), places, "places", "location")
                 if places else [])
    return characters, locations


def director_look(name: str) -> DirectorLook:
    """The shipped look (config/directors) called `name`."""
    return pick(load_profiles(DirectorLook), [name], "director", "look")[0]
