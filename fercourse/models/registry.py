"""The model registry: build any course model by name, and measure it.

In the style of timm and torchvision: each architecture module registers a builder (a model class
or a small function) whose keyword-only arguments are its configuration with
:func:`register_model`;
:func:`create_model` builds a model by name and records the name and the resolved keyword
arguments on it, so :func:`fercourse.checkpoint.load_checkpoint` can rebuild exactly the same
architecture later. Introduced in ``notebooks/02_baseline.ipynb``.

Example:
    >>> import fercourse as fc
    >>> model = fc.models.create_model("baseline_cnn", width=16)
    >>> model.model_name, model.model_kwargs["width"]
    ('baseline_cnn', 16)
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from ..preprocessing import IMAGE_SIZE

__all__ = [
    "WEIGHT_KWARGS",
    "count_flops",
    "count_parameters",
    "create_model",
    "describe_model",
    "get_model_builder",
    "has_pretrained_weights",
    "list_models",
    "model_info",
    "model_label",
    "register_model",
    "unregister_model",
]

WEIGHT_KWARGS: tuple[str, ...] = ("pretrained", "weights_path")
"""Builder arguments that say where the starting weights come from, not what the architecture is.

They are never stored in ``model.model_kwargs``: a model rebuilt from a checkpoint must not try to
download or read weights that the checkpoint already holds.
"""

DEFAULT_INPUT_SIZE: tuple[int, int, int, int] = (1, 1, IMAGE_SIZE, IMAGE_SIZE)

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What the course knows about a registered model besides how to build it.

    Attributes:
        name: the registry name.
        builder: the class or function that builds it.
        notebook: the course notebook that teaches and trains it (``"02_baseline"``), or
            ``None`` for a model outside the course's chapters.
        recipes: per preset (``"full"``, ``"smoke"``, ``"class"``), the ``TrainConfig`` values
            that differ from the preset's shared ones (e.g. ``{"full": {"lr": 1e-3}}``);
            ``fc.TrainConfig.for_model`` reads them.
    """

    name: str
    builder: Callable[..., nn.Module]
    notebook: str | None = None
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)


_INFO: dict[str, ModelInfo] = {}


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    name: str | None = None,
    notebook: str | None = None,
    recipes: dict[str, dict[str, Any]] | None = None,
) -> Callable[..., Any]:
    """Register a model builder under ``name`` (default: the builder's ``__name__``).

    Use it as a decorator on a model class or a builder function: ``@register_model`` or
    ``@register_model(name="...", notebook="02_baseline", recipes={"full": {"lr": 1e-3}})``. A
    builder takes keyword-only arguments with defaults (``def my_cnn(*, width: int = 32) ->
    nn.Module``, or a class whose ``__init__`` does), so the registry can tell which arguments
    exist and record their values. The model's training recipe is registered here too, next to
    the architecture, so adding a model is one file: see :class:`ModelInfo`.

    Raises:
        ValueError: if the name is already registered (timm only warns and overwrites, which hides
            a second definition silently).
        TypeError: if the builder takes positional arguments, ``**kwargs`` or an argument without
            a default.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _BUILDERS:
            other = _BUILDERS[key]
            raise ValueError(
                f"model name {key!r} is already registered by {other.__module__}.{other.__qualname__}; "
                "choose another name"
            )
        bad = [
            p.name
            for p in inspect.signature(builder).parameters.values()
            if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty
        ]
        if bad:
            raise TypeError(
                f"builder {builder.__qualname__} must take keyword-only arguments with defaults "
                f"(`def {builder.__name__}(*, ...)`); these are not: {', '.join(bad)}"
            )
        _BUILDERS[key] = builder
        _INFO[key] = ModelInfo(key, builder, notebook, dict(recipes or {}))
        return builder

    return decorate(fn) if fn is not None else decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, in the order the course introduces them.

    Args:
        pattern: optional shell-style filter, e.g. ``"*cnn"``.
    """
    names = list(_BUILDERS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def model_info(name: str) -> ModelInfo:
    """The registered :class:`ModelInfo` of ``name`` (its notebook and training recipes).

    Raises:
        ValueError: for an unknown name; the message lists the available models.
    """
    get_model_builder(name)
    return _INFO[name]


def unregister_model(name: str) -> None:
    """Remove a registered model (for tests and experiments that register a temporary one)."""
    _BUILDERS.pop(name, None)
    _INFO.pop(name, None)


def model_label(model: nn.Module) -> str:
    """The model's registry name, or its class name for a module built by hand."""
    return getattr(model, "model_name", None) or type(model).__name__


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """Return the builder function registered as ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the available models.
    """
    try:
        return _BUILDERS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_BUILDERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} Available models: {', '.join(_BUILDERS)}"
        ) from None


def has_pretrained_weights(name: str) -> bool:
    """Whether ``create_model(name, pretrained=True)`` exists (``vit_tiny``: ImageNet weights)."""
    return "pretrained" in inspect.signature(get_model_builder(name)).parameters


def create_model(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a registered model by name.

    Args:
        name: one of :func:`list_models` (``baseline_cnn``, ``attention_cnn``, ``multiscale``,
            ``hybrid_transformer``, ``specialists``, ``vit_tiny``).
        pretrained: start from pretrained weights (only models whose builder accepts it:
            ``vit_tiny``).
        **kwargs: the architecture's keyword arguments (see its builder's docstring).

    Returns:
        The model, in training mode, with ``model.model_name`` and ``model.model_kwargs`` (every
        builder argument with its value, JSON-serialisable, without ``pretrained`` /
        ``weights_path``) set.

    Raises:
        ValueError: unknown model name, or ``pretrained=True`` for a model without weights.
        TypeError: an argument the builder does not take (the message lists those it takes).

    Example:
        >>> model = create_model("attention_cnn")
        >>> model(torch.zeros(2, 1, 48, 48)).shape
        torch.Size([2, 7])
    """
    builder = get_model_builder(name)
    params = inspect.signature(builder).parameters
    unknown = [k for k in kwargs if k not in params or k == "pretrained"]
    if unknown:
        accepted = [k for k in params if k != "pretrained"]
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, accepted, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"create_model({name!r}) got unknown keyword argument(s) {', '.join(hints)}; "
            f"{name} takes: {', '.join(accepted)}"
        )
    if pretrained and "pretrained" not in params:
        with_weights = [n for n in _BUILDERS if has_pretrained_weights(n)]
        raise ValueError(
            f"{name!r} has no pretrained weights; train it from scratch (pretrained=False). "
            f"Models with pretrained weights: {', '.join(with_weights) or 'none'}"
        )
    call = dict(kwargs)
    if "pretrained" in params:
        call["pretrained"] = pretrained
    model = builder(**call)
    config = {k: p.default for k, p in params.items() if k not in WEIGHT_KWARGS}
    config.update({k: v for k, v in kwargs.items() if k not in WEIGHT_KWARGS})
    model.model_name = name
    model.model_kwargs = _jsonable(config, name)
    return model


def _jsonable(config: dict[str, Any], name: str) -> dict[str, Any]:
    """Tuples become lists (what JSON gives back), anything JSON cannot hold is an error."""
    try:
        return json.loads(json.dumps(config))
    except TypeError as exc:
        bad = [k for k, v in config.items() if not _dumps_ok(v)]
        raise TypeError(
            f"create_model({name!r}): keyword argument(s) {bad} cannot be stored in a checkpoint "
            f"card (JSON): {exc}"
        ) from exc


def _dumps_ok(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (all of them, or only those that require gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _cpu_attention_flops(
    query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    """PyTorch's own attention formula, for the CPU kernel its ``FlopCounterMode`` does not list."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# FlopCounterMode counts the CUDA attention kernels but not the one CPU runs (PyTorch 2.x), so
# without this the attention of the hybrid and of ViT-Tiny would be left out of their GFLOPs.
_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
}


def count_flops(model: nn.Module, input_size: tuple[int, ...] = DEFAULT_INPUT_SIZE) -> int:
    """Floating-point operations of one forward pass, counted by PyTorch's ``FlopCounterMode``.

    Counts convolutions, matrix products and attention (a multiply-add is 2 FLOPs); pooling,
    normalisation and activations are left out, as is usual. The model runs once in eval mode on
    zeros (with autograd on, so ``nn.TransformerEncoder`` takes its countable path), then gets its
    mode back.

    Args:
        model: any module.
        input_size: shape of the input batch; the default is one 48x48 face.
    """
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(input_size, device=device)
    model.eval()
    try:
        counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
        with torch.enable_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def describe_model(
    model: nn.Module, input_size: tuple[int, ...] = DEFAULT_INPUT_SIZE
) -> dict[str, Any]:
    """A small summary for notebooks: name, parameters, GFLOPs per face and input shape.

    Example:
        >>> describe_model(create_model("baseline_cnn"))  # doctest: +SKIP
        {'name': 'baseline_cnn', 'params': 420007, 'params_m': 0.42, 'gflops': 0.171, 'input': [1, 1, 48, 48]}
    """
    params = count_parameters(model)
    flops = count_flops(model, input_size)
    return {
        "name": model_label(model),
        "params": params,
        "params_m": round(params / 1e6, 2),
        "gflops": round(flops / 1e9 / input_size[0], 3),
        "input": list(input_size),
    }
