"""The bible in every picture prompt: who is in a scene and where it happens, said the same way
(cast order, then the location) every time, so the same scene always gets the same prompt."""

from __future__ import annotations

from tasks.storyboard import Character, DirectorLook, Product, Scene, Storyboard, Subject


def scene_prompt(scene: Scene, storyboard: Storyboard) -> str:
    """A keyframe's or clip's prompt: the scene's picture, its cast as the bible describes them,
    its location, and the director's look."""
    said = {"character": "{}.", "product": "Featuring the product: {}, exactly as in its "
            "pictures.", "location": "Setting: {}."}
    return "\n".join([scene.visual_prompt, *(
        said[s.kind].format(s.describe()) for s in storyboard.drawn_from(scene)),
        *([storyboard.director.describe()] if storyboard.director else [])])


def reference_prompt(subject: Subject, director: DirectorLook | None) -> str:
    """A reference sheet's prompt: the one picture every scene of this subject is drawn from,
    drawn in the director's look (a character's sheet keeps its plain, even setting)."""
    drawn = f" Drawn as: {director.prompt}." if director else ""
    if isinstance(subject, Character):
        return (f"Character reference sheet of {subject.describe()}. Full body, front view, "
                f"neutral pose, plain light background, even lighting.{drawn}")
    if isinstance(subject, Product):
        return (f"Product packshot of {subject.describe()}. Centred, whole, plain light "
                f"background, soft studio lighting.{drawn}")
    palette = f" Palette: {', '.join(subject.palette)}." if subject.palette else ""
    return f"Establishing view of {subject.describe()}. No people.{palette}{drawn}"
