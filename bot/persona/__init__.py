"""Persona specs: `personas/<name>/persona.toml`, validated with errors that name the file and field."""
from bot.persona.spec import PersonaSpec, ModelSpec, SamplingSpec
from bot.persona.loader import PersonaError, load_persona, load_personas, list_persona_names, find_persona_folder, persona_folders

__all__ = ["PersonaSpec", "ModelSpec", "SamplingSpec", "PersonaError", "load_persona", "load_personas", "list_persona_names", "find_persona_folder", "persona_folders"]
