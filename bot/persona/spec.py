"""The persona spec schema.

One `persona.toml` per persona folder. Unknown keys are rejected everywhere (a typo must not be
silently ignored). Secrets never live here: `model.api_key_env` names an environment variable.
Training, synthetic-data, schedule and gate (`gate.py`) settings have their own modules (`training.py`,
`synthetic.py`, `schedule.py`) because the trainer owns them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.persona.gate import GateSpec
from bot.persona.lorebook import Lorebook
from bot.persona.schedule import ScheduleSpec
from bot.persona.synthetic import SyntheticSpec
from bot.persona.training import TrainingSpec


def check_persona_name(v: str) -> str:
    """A persona (folder) name: letters, digits, '-' or '_', starting with a letter."""
    if not v or not all(c.isalnum() or c in "-_" for c in v) or not v[0].isalpha():
        raise ValueError("expected a lowercase slug such as 'tim' (letters, digits, '-' or '_')")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    backend: Literal["local", "openai", "vllm"] = Field("local", description="Which backend serves the persona.")
    model: str = Field(
        "smollm2-135m-instruct",
        description="Model: 'smollm2-135m-instruct' (embedded), a local HF folder or .gguf file, an OpenAI model id, or the vLLM base model.",
    )
    adapter: str | None = Field(
        None, description="LoRA adapter: a folder for local, an adapter name for vLLM. The registry's active version overrides it."
    )
    base_url: str | None = Field(None, description="Override the backend's base URL (else the OPENAI_/VLLM_ settings).")
    api_key_env: str | None = Field(None, description="Environment variable that holds the API key (else the OPENAI_/VLLM_ settings).")


class SamplingSpec(_Strict):
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, le=8192, description="Most tokens in one reply.")
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Local backend only.")
    stop: list[str] = Field(default_factory=list, description="Extra stop sequences; the member's label is always one.")


class CurationSpec(_Strict):
    """`[curation]`: who may review this persona's logged replies, and whose replies may train it."""

    curator_role: str | None = Field(
        None, description="Name (or id) of a Discord role whose members may curate this persona; Manage Server always may.")
    shared: bool = Field(
        False, description="Curate and train on this persona's replies from every guild; else each guild sees only its own.")


class CardSpec(_Strict):
    """`[card]`: where a persona imported from a character card came from (`personabot persona import`)."""

    file: str = Field("card.json", description="The card as imported, verbatim, in the persona folder; export starts from it and its lorebook is read from it.")
    spec: Literal["chara_card_v1", "chara_card_v2", "chara_card_v3"] = Field("chara_card_v2", description="The card's spec.")
    creator: str = Field("", description="The card's creator.")
    character_version: str = Field("", description="The card's own version string.")
    tags: list[str] = Field(default_factory=list, description="The card's tags.")
    creator_notes: str = Field("", description="Notes from the card's creator (not sent to the model).")
    alternate_greetings: list[str] = Field(default_factory=list, description="Other first messages the card offers.")
    imported_from: str = Field("", description="File name the card was imported from.")


class PersonaSpec(_Strict):
    name: str = Field(description="Folder name; also the prefix of versioned adapter names (tim-v3).")
    display_name: str = Field(description="Shown in Discord and used as the persona's speaker label.")
    description: str = Field("", description="One line for /persona list.")
    avatar_url: str | None = None
    system_prompt: str = Field(min_length=1, description="Shared by serving and training, word for word.")
    user_label: str = Field("User", description="Speaker label of the member in transcripts.")
    aliases: list[str] = Field(default_factory=list, description="Other labels the persona's own turns may carry (e.g. 'Tim').")
    context_budget: int = Field(1536, ge=64, description="Tokens for system prompt plus history; the reply's max_tokens come on top.")
    may_stay_silent: bool = Field(False, description="The persona may answer with nothing when silence fits.")
    error_reply: str = Field(
        "Sorry, I lost my train of thought for a moment. Could you ask me that again?",
        description="Short in-character apology sent when the model backend fails.",
    )
    empty_reply: str = Field(
        "Hmm, could you tell me a little more?",
        description="Sent when the model produced nothing and the persona may not stay silent.",
    )
    model: ModelSpec = Field(default_factory=ModelSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    synthetic: SyntheticSpec = Field(default_factory=SyntheticSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    curation: CurationSpec = Field(default_factory=CurationSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    greeting: str = Field("", description="First message the persona posts in a thread opened with /chat ({{user}} = the member's name).")
    post_history_instructions: str = Field(
        "", description="Sent after the conversation, as a last system message, on every reply ({{user}} = the member's name)."
    )
    avatar_file: str | None = Field(None, description="PNG in the persona folder used as its webhook avatar when avatar_url is unset.")
    card: CardSpec | None = Field(None, description="Set for personas imported from a character card.")
    folder: Path | None = Field(None, exclude=True, description="Where the spec was loaded from (set by the loader).")
    lore: Lorebook | None = Field(None, exclude=True, description="The card's lorebook, parsed from card.json (set by the loader).")

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return check_persona_name(v)

    @property
    def labels(self) -> list[str]:
        """Every label the persona's own turns may carry, display name first."""
        seen = []
        for label in [self.display_name, self.name, *self.aliases]:
            if label.lower() not in [s.lower() for s in seen]:
                seen.append(label)
        return seen

    @property
    def offline_system_prompt(self) -> str:
        """The system prompt with no particular member in the chat: `{{user}}` is `user_label`.

        What training, synthetic data and evaluation use. Serving resolves `{{user}}` to the member
        being answered instead (`bot.engine.engine.persona_prompt`); a literal `{{user}}` in a
        training example would teach the model to write the macro."""
        from bot.persona import macros

        return macros.resolve(self.system_prompt, char=self.display_name, user=self.user_label)

    def data_file(self, relative: str) -> Path:
        """A file in the persona's folder (topics, templates, probes)."""
        if self.folder is None:
            raise ValueError(f"persona {self.name!r} was not loaded from a folder")
        return self.folder / relative
