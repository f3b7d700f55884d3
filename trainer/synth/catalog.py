"""A persona's synthetic-data files, validated, and the deterministic plan of a run.

Files (names set by the persona's `[synthetic]` section, relative to its folder):

- `topics.toml`: one array of strings per tag; tags are `general`, `child`, `adult`, `adversarial`.
      general = ["how volcanoes form", …]
      adversarial = ["the learner is hungry but will not say so …", …]
- `profiles.toml`: `[[profile]]` tables with `id`, `text` (who the user is, written to follow "The
  user is …") and `tags` (the topic tags the profile fits; all when omitted).
- `templates/*.txt`: prompt templates. Slots: `{persona}`, `{topic}` and `{user_profile}` are
  required; `{user}` (the user's label) and `{silence}` (the silence marker) are optional. Any other
  `{name}` is an error, so a typo never reaches the model. Leading `#` lines are comments; a
  `# tags: adversarial, child` comment limits the template to those topic tags. Lines after a line
  `=== opening ===` are the opening of the transcript (e.g. `{user}: Hi {persona}!` and
  `{persona}:`): they end the prompt, and the writer's reply is read as their continuation. This
  is the completion-style technique that keeps small or base models in the transcript format.

Contract: `load_catalog(persona)` raises `CatalogError` naming the file (and entry) of every problem.
`Catalog.plan(count, seed)` returns `PlanItem`s that depend only on the files, the seed and the
index: the first N items are the same whatever the count, so a rerun with a larger count only adds
items. Topics are dealt from a shuffled deck per tag (every topic is used before any repeats),
tags are drawn by weight, and profile and template are drawn among those that fit the tag.
"""
from __future__ import annotations

import hashlib
import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bot.persona.spec import PersonaSpec
from bot.persona.synthetic import SILENCE_MARKER, TOPIC_TAGS

REQUIRED_SLOTS = ("persona", "topic", "user_profile")
OPTIONAL_SLOTS = ("user", "silence")
_SLOT = re.compile(r"\{(\w*)\}")


class CatalogError(ValueError):
    """The persona's synthetic-data files cannot be used; the message names each file and problem."""


@dataclass(frozen=True)
class Topic:
    tag: str
    text: str


@dataclass(frozen=True)
class Profile:
    id: str
    text: str
    tags: tuple[str, ...]


OPENING_MARKER = "=== opening ==="


@dataclass(frozen=True)
class Template:
    name: str                   # file stem
    text: str                   # without the comment header (opening included, after OPENING_MARKER)
    tags: tuple[str, ...]

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def _fill(self, text: str, persona: str, topic: str, user_profile: str, user: str) -> str:
        values = {"persona": persona, "topic": topic, "user_profile": user_profile, "user": user, "silence": SILENCE_MARKER}
        return _SLOT.sub(lambda m: values[m.group(1)], text)

    def _parts(self) -> tuple[str, str]:
        lines = self.text.split("\n")
        if OPENING_MARKER in (line.strip() for line in lines):
            at = [line.strip() for line in lines].index(OPENING_MARKER)
            return "\n".join(lines[:at]).strip() + "\n", "\n".join(lines[at + 1 :]).strip()
        return self.text, ""

    def render(self, *, persona: str, topic: str, user_profile: str, user: str = "User") -> str:
        """The prompt: instructions, then the opening (if any) for the writer to continue."""
        instructions, opening = self._parts()
        prompt = self._fill(instructions, persona, topic, user_profile, user)
        return prompt + ("\n" + self._fill(opening, persona, topic, user_profile, user) if opening else "")

    def render_opening(self, *, persona: str, topic: str, user_profile: str, user: str = "User") -> str:
        """The start of the transcript the writer's reply continues ('' when the template has none)."""
        return self._fill(self._parts()[1], persona, topic, user_profile, user)


@dataclass(frozen=True)
class PlanItem:
    index: int
    seed: int                   # the item's own sampling seed
    topic: Topic
    profile: Profile
    template: Template

    @property
    def key(self) -> str:
        """Identity of the prompt: a rerun skips an item whose key is already done."""
        ident = "\0".join([str(self.index), str(self.seed), self.template.hash, self.topic.tag, self.topic.text, self.profile.id, self.profile.text])
        return hashlib.sha256(ident.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Catalog:
    topics: dict[str, tuple[str, ...]]      # tag -> topics (non-empty tags only)
    profiles: tuple[Profile, ...]
    templates: tuple[Template, ...]
    tag_weights: dict[str, float]

    def plan(self, count: int, seed: int, tags: tuple[str, ...] | None = None) -> list[PlanItem]:
        weights = {t: w for t, w in self.tag_weights.items() if w > 0 and t in self.topics and (not tags or t in tags)}
        if not weights:
            wanted = ", ".join(tags) if tags else "any tag"
            raise CatalogError(f"no topics to draw from for {wanted} (tags with topics: {', '.join(self.topics) or 'none'})")
        rng = random.Random(f"synth-plan:{seed}")
        decks: dict[str, list[str]] = {t: [] for t in weights}
        order = sorted(weights)
        items = []
        for index in range(count):
            tag = rng.choices(order, weights=[weights[t] for t in order])[0]
            if not decks[tag]:
                decks[tag] = list(self.topics[tag])
                rng.shuffle(decks[tag])
            topic = Topic(tag, decks[tag].pop())
            profile = rng.choice([p for p in self.profiles if tag in p.tags])
            template = rng.choice([t for t in self.templates if tag in t.tags])
            items.append(PlanItem(index, rng.randrange(2**31), topic, profile, template))
        return items


def load_catalog(persona: PersonaSpec) -> Catalog:
    spec = persona.synthetic
    problems: list[str] = []
    topics = _load_topics(persona.data_file(spec.topics), problems)
    profiles = _load_profiles(persona.data_file(spec.profiles), problems)
    templates = _load_templates(persona.data_file(spec.templates), problems)
    for tag in topics:
        if profiles and not any(tag in p.tags for p in profiles):
            problems.append(f"{persona.data_file(spec.profiles)}: no profile fits the topic tag {tag!r} (add it to some profile's tags)")
        if templates and not any(tag in t.tags for t in templates):
            problems.append(f"{persona.data_file(spec.templates)}: no template fits the topic tag {tag!r} (remove the '# tags:' line of one, or add the tag)")
    if problems:
        raise CatalogError("\n".join(problems))
    weights = dict(spec.tag_weights) if spec.tag_weights else {t: float(len(v)) for t, v in topics.items()}
    return Catalog(topics, tuple(profiles), tuple(templates), weights)


def _read_toml(path: Path, problems: list[str]) -> dict | None:
    if not path.is_file():
        problems.append(f"{path}: not found")
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    return None


def _load_topics(path: Path, problems: list[str]) -> dict[str, tuple[str, ...]]:
    raw = _read_toml(path, problems)
    if raw is None:
        return {}
    topics: dict[str, tuple[str, ...]] = {}
    for tag, values in raw.items():
        if tag not in TOPIC_TAGS:
            problems.append(f"{path}: {tag}: unknown tag (expected one of {', '.join(TOPIC_TAGS)})")
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            problems.append(f"{path}: {tag}: expected an array of non-empty strings")
            continue
        seen, unique = set(), []
        for v in values:
            if v.strip().lower() in seen:
                problems.append(f"{path}: {tag}: duplicate topic {v!r}")
            seen.add(v.strip().lower())
            unique.append(v.strip())
        if unique:
            topics[tag] = tuple(unique)
    if not topics and not problems:
        problems.append(f"{path}: no topics (add e.g. general = [\"…\"])")
    return topics


def _load_profiles(path: Path, problems: list[str]) -> list[Profile]:
    raw = _read_toml(path, problems)
    if raw is None:
        return []
    entries = raw.get("profile")
    if not isinstance(entries, list) or not entries:
        problems.append(f"{path}: expected one or more [[profile]] tables")
        return []
    out, ids = [], set()
    for n, entry in enumerate(entries, start=1):
        where = f"{path}: profile {n}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a table")
            continue
        unknown = set(entry) - {"id", "text", "tags"}
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (expected id, text, tags)")
        pid, text, tags = entry.get("id"), entry.get("text"), entry.get("tags", list(TOPIC_TAGS))
        if not isinstance(pid, str) or not pid:
            problems.append(f"{where}: id: required string")
            continue
        if pid in ids:
            problems.append(f"{where}: id {pid!r} is used twice")
        ids.add(pid)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where} ({pid}): text: required string")
            continue
        if not isinstance(tags, list) or any(t not in TOPIC_TAGS for t in tags):
            problems.append(f"{where} ({pid}): tags: expected a list of {', '.join(TOPIC_TAGS)} (got {tags!r})")
            continue
        out.append(Profile(pid, " ".join(text.split()), tuple(tags)))
    return out


def _load_templates(folder: Path, problems: list[str]) -> list[Template]:
    if not folder.is_dir():
        problems.append(f"{folder}: not found (a folder of *.txt prompt templates)")
        return []
    out = []
    for path in sorted(folder.glob("*.txt")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            problems.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
            continue
        tags: tuple[str, ...] = TOPIC_TAGS
        while lines and lines[0].startswith("#"):
            header = lines.pop(0)[1:].strip()
            if header.lower().startswith("tags:"):
                tags = tuple(t.strip() for t in header[5:].split(",") if t.strip())
                bad = [t for t in tags if t not in TOPIC_TAGS]
                if bad or not tags:
                    problems.append(f"{path}: '# tags:' names unknown tag(s) {bad or '(none)'}; expected {', '.join(TOPIC_TAGS)}")
        text = "\n".join(lines).strip() + "\n"
        slots = set(_SLOT.findall(text))
        unknown = slots - set(REQUIRED_SLOTS) - set(OPTIONAL_SLOTS)
        if unknown:
            problems.append(f"{path}: unknown slot(s) {', '.join('{' + s + '}' for s in sorted(unknown))}; "
                            f"allowed: {', '.join('{' + s + '}' for s in REQUIRED_SLOTS + OPTIONAL_SLOTS)}")
        missing = [s for s in REQUIRED_SLOTS if s not in slots]
        if missing:
            problems.append(f"{path}: missing slot(s) {', '.join('{' + s + '}' for s in missing)}")
        out.append(Template(path.stem, text, tags))
    if not out and not any(p.startswith(str(folder)) for p in problems):
        problems.append(f"{folder}: no *.txt templates")
    return out
