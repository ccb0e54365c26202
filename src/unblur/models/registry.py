"""Model registry: architectures and their weights described as data.

``create_model(name, pretrained=True)`` builds a registered model and loads its
shipped safetensors weights; unknown names raise :class:`~unblur.errors.ModelError`.
Weights are never unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unblur.errors import ModelError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: how to build it and which weights it ships with.

    Attributes:
        name: registry name, e.g. ``"nafnet-fast"``.
        build: constructor returning an un-initialised ``torch.nn.Module``.
        weights: file name under ``unblur/models/weights`` (``None``: none shipped).
        task: ``"restore"`` or ``"motion"``.
        description: one line for ``list_models``.
        meta: training data, recipe (config path and command), steps, hardware,
            wall time and measured metrics; mirrors MODELS.md.
    """

    name: str
    build: Callable[[], Any]
    weights: str | None
    task: str
    description: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def weights_path(self) -> Path | None:
        return None if self.weights is None else WEIGHTS_DIR / self.weights

    @property
    def has_weights(self) -> bool:
        """Whether the weights file ships in the package."""
        path = self.weights_path
        return path is not None and path.is_file()


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ModelError(f"unknown model {name!r}; known models: {known}") from None


def list_models(task: str | None = None) -> list[str]:
    """Names of the registered models (optionally of one task), sorted."""
    _load_builtin()
    return sorted(n for n, s in _REGISTRY.items() if task is None or s.task == task)


def create_model(name: str, *, pretrained: bool = True) -> Any:
    """Build a registered model, with its shipped weights when ``pretrained``.

    Raises:
        ModelError: unknown name, no shipped weights, or an invalid weights file.
    """
    spec = get_spec(name)
    model = spec.build()
    if pretrained:
        if spec.weights_path is None or not spec.weights_path.exists():
            raise ModelError(f"model {name!r} has no shipped weights; use pretrained=False")
        load_weights(model, spec.weights_path)
    return model.eval()


def load_weights(model: Any, path: str | Path, *, prefix: str = "") -> None:
    """Load a safetensors file into ``model``, strictly.

    Every tensor of the model must be present with the right shape and no
    other tensors may be in the file (``prefix`` selects a group, e.g.
    ``"ema."`` in a training checkpoint).

    Raises:
        ModelError: missing or unreadable file, not safetensors (a pickle, say),
            truncated, or keys/shapes that do not match the model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelError("no such weights file", path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"not a valid safetensors weights file ({reason})", path) from None
    if prefix:
        tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    state = model.state_dict()
    missing = sorted(set(state) - set(tensors))
    extra = sorted(set(tensors) - set(state))
    if missing or extra:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            detail.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        raise ModelError(f"weights do not fit this model: {', '.join(detail)}", path)
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(state[key].shape):
            raise ModelError(
                f"weights do not fit this model: {key} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(state[key].shape)}",
                path,
            )
    model.load_state_dict(tensors, strict=True)


_BUILTIN_LOADED = False


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        from unblur.models import zoo  # noqa: F401  (registers the built-in models)
