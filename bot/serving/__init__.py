"""Serving-side glue between the model registry and the backends (no trainer imports, no torch).

- `model_sync.ModelSync`: applies each persona's active registry version to the `BackendPool`, at
  start-up (re-registering vLLM adapters) and whenever the registry changes (hot-swap, rollback).
"""
from bot.serving.model_sync import ModelSync, SyncResult, UnservableVersion, admin_endpoint, serving_model, vllm_admin

__all__ = ["ModelSync", "SyncResult", "UnservableVersion", "admin_endpoint", "serving_model", "vllm_admin"]
