"""Networks and their registry: ``create_model``, ``list_models``, ``load_weights``."""

from unblur.models.registry import ModelSpec, create_model, get_spec, list_models, load_weights

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "load_weights"]
