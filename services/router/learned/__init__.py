"""The learned net: a character n-gram classifier beside the policy's rules (docs/routing.md)."""

from __future__ import annotations

from .model import (
    Assessment,
    LearnedModel,
    ModelError,
    default_model_path,
    load_model,
    readable,
)

__all__ = [
    "Assessment",
    "LearnedModel",
    "ModelError",
    "default_model_path",
    "load_model",
    "readable",
]
