"""Optimizer registry and named parameter groups (names show in TensorBoard as lr-<Optimizer>/<group>).

Takes parameter names and counts, not model classes: a parameter under `encoder.` belongs to the encoder (its depth,
for layer-wise decay, given by the caller, who can read the model), everything else to the head (pooler and
classifier).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

from project.core.errors import ConfigError
from project.core.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("model.optimization.optimizer")
register_optimizer = OPTIMIZERS.register

# Options go straight to torch: eps and betas (adam, adamw), momentum, nesterov and dampening (sgd), alpha and
# centered (rmsprop), rho (adadelta), lr_decay (adagrad), and fused/foreach where torch has them.
for _name, _optimizer in (
    ("adamw", torch.optim.AdamW),
    ("adam", torch.optim.Adam),
    ("sgd", torch.optim.SGD),
    ("rmsprop", torch.optim.RMSprop),
    ("adagrad", torch.optim.Adagrad),
    ("adadelta", torch.optim.Adadelta),
):
    register_optimizer(_name)(_optimizer)


# torch has fused (single-kernel) versions of these for CPU and CUDA tensors, several times faster per step
# (docs/benchmarks.md, "Figures behind code constants"). The other optimizers keep torch's default implementation.
FUSED = {"adamw", "adam", "sgd", "adagrad"}


def build_optimizer(
    name: str, groups: list[dict], lr: float, allow_fused: bool = False, **options
) -> torch.optim.Optimizer:
    """`options` are `model.optimization.optimizer_options`; a wrong one is a one-line ConfigError naming them.

    With `allow_fused`, the fused implementation is used where torch has one for these parameters, unless the
    options choose an implementation (`fused` or `foreach`) themselves.
    """
    factory = OPTIMIZERS.lookup(name)
    parameters = [parameter for group in groups for parameter in group["params"]]
    if allow_fused and name in FUSED and not {"fused", "foreach"} & set(options) and _fusable(parameters):
        options["fused"] = True
    try:
        return factory(groups, lr=lr, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model.optimization.optimizer_options for '{name}': {error}") from None


def _fusable(parameters: list[Tensor]) -> bool:
    return bool(parameters) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in parameters)


def parameter_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    learning_rate: float,
    weight_decay: float,
    num_layers: int,
    head_learning_rate: float | None = None,
    layer_decay: float | None = None,
    depths: Mapping[str, int] | None = None,
) -> list[dict]:
    """Named groups with their own lr and weight decay.

    - no weight decay for biases and norm weights (every 1-D tensor): groups ending in `_no_decay`;
    - the head (`head`) at `head_learning_rate` (default: `learning_rate`);
    - the encoder as one group (`encoder`) or, with `layer_decay` d, one per depth: the top layer at
      `learning_rate`, each layer below it x d, embeddings lowest (`embeddings`, `layer_1` ... `layer_L`, `top`).
      `depths` then gives each encoder parameter's depth by name: 0 the embeddings, i the i-th of `num_layers`
      layers, num_layers + 1 what sits above them. The model finds its own layers (project.model.families), since
      families keep them under different names.
    """
    if layer_decay is not None and not 0 < layer_decay <= 1:
        raise ConfigError(f"model.optimization.layer_decay must be in (0, 1], got {layer_decay}")
    if layer_decay is not None and depths is None:
        raise ValueError("parameter_groups: layer_decay needs the encoder parameters' depths")
    groups: dict[str, dict] = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        if not name.startswith("encoder."):
            group, lr = "head", learning_rate if head_learning_rate is None else head_learning_rate
        elif layer_decay is None:
            group, lr = "encoder", learning_rate
        else:
            depth = depths[name]
            group = {0: "embeddings", num_layers + 1: "top"}.get(depth, f"layer_{depth}")
            lr = learning_rate * layer_decay ** max(0, num_layers - depth)
        decays = parameter.ndim >= 2
        key = group if decays else f"{group}_no_decay"
        groups.setdefault(key, {"name": key, "params": [], "lr": lr, "weight_decay": weight_decay if decays else 0.0})
        groups[key]["params"].append(parameter)
    return list(groups.values())
