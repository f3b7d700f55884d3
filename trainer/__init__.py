"""personabot training side: importers, dataset building, synthetic generation, fine-tuning,
evaluation, the model registry and promotion, and the scheduler. May import `bot` (store, persona
specs, backends); `bot` never imports this package at start-up."""
