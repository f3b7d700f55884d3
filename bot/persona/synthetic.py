"""`[synthetic]` section of a persona spec: synthetic conversation generation (owned by the trainer).

The section names the persona's own data files (topic lists, prompt templates, user profiles) and
the knobs of `personabot synth`: sampling for the transcript writer, concurrency, retries, clean-up
thresholds and the optional style augmentation of user turns. Every key has a default, so a persona
without the section still validates; `trainer.synth` reads the files it points to.

Silence convention (shared by training and serving): a deliberately empty persona turn is stored as
a source message with `kind='silence'` and `text=''`, and exported as an assistant message with
content `""` (the mark: the dataset builder and validator accept an empty assistant message only
as deliberate silence, for personas with `may_stay_silent`; serving treats an empty reply from
such a persona as silence too, so both sides agree). Transcript writers write it as the persona's
label followed by `SILENCE_MARKER`; the clean-up keeps it only for personas with `may_stay_silent`.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: What a transcript writer puts after the persona's label for a deliberately unanswered message.
SILENCE_MARKER = "[silence]"

TOPIC_TAGS = ("general", "child", "adult", "adversarial")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StyleSpec(_Strict):
    """Make user turns look like real chat. Applied to user turns only, never to the persona's."""

    enabled: bool = Field(False, description="Turn style augmentation on for this persona.")
    lowercase: float = Field(0.7, ge=0.0, le=1.0, description="Probability that a user turn is written all in lower case.")
    punctuation_drop: float = Field(
        0.6, ge=0.0, le=1.0, description="Probability that each '.', ',', ';' or ':' in a user turn is dropped ('?' and '!' are kept: they carry meaning)."
    )
    apostrophe_drop: float = Field(0.5, ge=0.0, le=1.0, description="Probability that a user turn loses its apostrophes (dont, im).")
    typo_rate: float = Field(0.03, ge=0.0, le=0.5, description="Probability that a word of three letters or more gets one typo.")


class SyntheticSpec(_Strict):
    topics: str = Field("topics.toml", description="Topic lists file in the persona folder: one array per tag (general, child, adult, adversarial).")
    templates: str = Field("templates", description="Folder of generation prompt templates (*.txt with {persona}, {topic}, {user_profile} slots).")
    profiles: str = Field("profiles.toml", description="User profiles file in the persona folder ([[profile]] id, tags, text).")
    min_turns: int = Field(4, ge=2, description="Conversations with fewer turns (after merging and trimming) are dropped.")
    per_run: int = Field(0, ge=0, description="New synthetic conversations added by each scheduled training run.")
    tag_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Relative share of each topic tag in a run (e.g. {general = 3, adversarial = 1}); default: in proportion to the number of topics.",
    )
    temperature: float = Field(0.9, ge=0.0, le=2.0, description="Sampling temperature of the transcript writer (higher: more varied).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling of the transcript writer.")
    max_tokens: int = Field(900, ge=64, le=16384, description="Most tokens in one generated transcript.")
    concurrency: int = Field(4, ge=1, le=256, description="Generations in flight at once.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries of a failed generation (retryable errors only), with exponential backoff.")
    backoff_s: float = Field(1.0, ge=0.0, description="First retry delay in seconds; doubles with each retry (plus jitter).")
    dedup_threshold: float = Field(0.85, gt=0.0, le=1.0, description="MinHash Jaccard similarity at which a conversation counts as a near-duplicate of an earlier one.")
    persona_labels: list[str] = Field(
        default_factory=lambda: ["Assistant", "AI", "Bot"],
        description="Extra speaker labels normalised to the persona (other personas' names are added automatically).",
    )
    user_labels: list[str] = Field(
        default_factory=lambda: ["Human", "Usr", "Me"], description="Extra speaker labels normalised to the user label."
    )
    writer_system: str = Field(
        "You write realistic chat transcripts. Follow the requested format exactly: one message per line, "
        "each starting with the speaker's label and a colon. Write only the transcript.",
        description="System message sent to the transcript writer before the rendered template.",
    )
    style: StyleSpec = Field(default_factory=StyleSpec)

    @field_validator("tag_weights")
    @classmethod
    def _known_tags(cls, v: dict[str, float]) -> dict[str, float]:
        for tag, weight in v.items():
            if tag not in TOPIC_TAGS:
                raise ValueError(f"unknown topic tag {tag!r}; expected one of {', '.join(TOPIC_TAGS)}")
            if weight < 0:
                raise ValueError(f"weight of {tag!r} must be >= 0")
        return v
