import math
import re

import pytest
import torch
from torch import nn

from project.core.errors import ConfigError
from project.optim.optimizers import FUSED, OPTIMIZERS, build_optimizer, parameter_groups
from project.optim.plan import OptimizationOptions
from project.optim.schedules import SCHEDULES, build_schedule, check_schedule_options, warmup_steps
from project.tricks.l1 import l1_penalty

# The lr function the `lambda` schedule's own tests give it.
HALVING = {"lr_lambda": "tests.helpers:halve_every_ten_steps"}


def schedule_values(name: str, warmup: int, total: int, lr: float = 1.0, **options) -> list[float]:
    """The schedule's own lr at each optimizer step, from a throwaway optimizer."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    configs = build_schedule(name, optimizer, warmup, total, **options)
    values = []
    for _ in range(total):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        for config in configs:
            if config["interval"] == "step":
                config["scheduler"].step()
    return values


def test_linear_warmup_then_linear_decay_by_hand():
    # Independent reference: the formula, not transformers (which our schedule calls).
    expected = [step / 4 if step < 4 else (10 - step) / 6 for step in range(10)]
    assert schedule_values("linear", 4, 10) == pytest.approx(expected)


def test_cosine_by_hand():
    expected = [step / 2 if step < 2 else 0.5 * (1 + math.cos(math.pi * (step - 2) / 8)) for step in range(10)]
    assert schedule_values("cosine", 2, 10) == pytest.approx(expected)


def runnable(name: str) -> tuple[bool, dict] | None:
    """(takes a warmup, options) under which schedule `name` runs, found by trying it: with a warmup, else without
    one (constant refuses one), each on its defaults, else with a user's lr function (lambda needs one). None if
    it runs under none of these; its refusal must then be one line naming its options."""
    refusal = None
    for options in ({}, HALVING):
        for warmup in (5, 0):
            try:
                schedule_values(name, warmup, 40, **options)
            except ConfigError as error:
                refusal = refusal or str(error)
                continue
            return bool(warmup), options
    assert "scheduler_options" in refusal and "\n" not in refusal
    return None


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_rises_through_warmup_to_the_peak_and_stays_finite(name):
    settings = runnable(name)
    if settings is None:
        return  # it refuses its defaults in one clear line; its own test gives it what it needs
    warmup = 5 if settings[0] else 0
    values = schedule_values(name, warmup, 40, **settings[1])
    assert all(math.isfinite(value) and value >= 0 for value in values)
    assert all(a <= b for a, b in zip(values[:warmup], values[1 : warmup + 1], strict=True))
    assert values[warmup] == pytest.approx(1.0) and max(values) == pytest.approx(1.0)


def test_every_built_in_schedule_runs_on_the_settings_the_registry_tests_find():
    assert all(runnable(name) is not None for name in SCHEDULES)
    assert runnable("constant") == (False, {}) and runnable("lambda") == (True, HALVING)


@pytest.mark.parametrize(
    "name, options, check",
    [
        ("step", {"step_size": 10, "gamma": 0.5}, lambda v: v[4:14] == [1.0] * 10 and v[14] == 0.5),
        ("multistep", {"milestones": [5, 10], "gamma": 0.1}, lambda v: v[8] == 1.0 and v[9] == pytest.approx(0.1)),
        ("exponential", {"final_factor": 0.01}, lambda v: v[-1] == pytest.approx(0.01, rel=1e-6)),
        ("cosine_annealing", {"eta_min": 0.1}, lambda v: v[4] == 1.0 and v[-1] > 0.1),
        ("lambda", HALVING, lambda v: v[13] == 1.0 and v[14] == 0.5 and v[24] == 0.25),
        ("cosine_with_min_lr", {"min_lr_rate": 0.2}, lambda v: min(v[4:]) >= 0.2 - 1e-9),
        ("polynomial", {"power": 2.0, "lr_end": 0.0}, lambda v: v[-1] < v[-2] < v[4]),
        ("warmup_stable_decay", {"decay_ratio": 0.25}, lambda v: v[4:30] == [1.0] * 26 and v[-1] < 0.1),
        ("reduce_on_plateau", {"warmup_type": "constant", "warmup_factor": 0.1}, lambda v: v[:4] == [0.1] * 4),
        ("step", {"warmup_type": "constant", "warmup_factor": 0.25}, lambda v: v[:4] == [0.25] * 4 and v[4] == 1.0),
    ],
)
def test_schedule_options_shape_the_curve(name, options, check):
    assert check(schedule_values(name, 4, 40, **options))


@pytest.mark.parametrize(
    "warmup, total, steps", [(0.1, 200, 20), (0.0, 10, 0), (0.5, 3, 1), (7, 100, 7), (7.0, 100, 7), (0, 5, 0)]
)
def test_warmup_is_a_ratio_below_one_and_a_step_count_otherwise(warmup, total, steps):
    assert warmup_steps(warmup, total) == steps


@pytest.mark.parametrize("warmup", [100, 1.5, -1])
def test_impossible_warmup_is_a_config_error(warmup):
    with pytest.raises(ConfigError, match=f"model.optimization.warmup={warmup}"):
        warmup_steps(warmup, 100)


@pytest.mark.parametrize(
    "name, options, message",
    [
        (
            "lineer",
            {},
            "unknown model.optimization.scheduler 'lineer'; choose from " + re.escape(str(sorted(SCHEDULES))),
        ),
        ("cosine", {"cycles": 2}, "model.optimization.scheduler_options for 'cosine': .*'cycles'"),
        ("step", {"warmup_type": "cubic"}, r"warmup_type 'cubic'; choose from \['constant', 'linear'\]"),
        ("lambda", {"lr_lambda": "no.such.module:f"}, "lr_lambda 'no.such.module:f'"),
        ("lambda", {"lr_lambda": "no_colon"}, "lr_lambda must name a function"),
        ("constant", {}, "'constant' has no warmup"),
        (
            "reduce_on_plateau",
            {"mode": "up"},
            "model.optimization.scheduler_options for 'reduce_on_plateau': mode up is unknown",
        ),
    ],
)
def test_bad_schedules_fail_in_one_line(name, options, message):
    with pytest.raises(ConfigError, match=message):
        schedule_values(name, 2, 10, **options)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedules_options_are_checked_before_it_is_built(name):
    # What the builder needs passes; a name no signature behind the schedule takes fails, naming the key.
    options = (runnable(name) or (False, {}))[1]
    assert check_schedule_options(name, options or None) == options
    key = f"model.optimization.scheduler_options for {name}: Option 'no_such_option' is not accepted"
    with pytest.raises(ConfigError, match=key):
        check_schedule_options(name, {**options, "no_such_option": 1})


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"scheduler": "cosine", "scheduler_options": {"foo": 1}},
            r"scheduler_options for cosine: Option 'foo'.*num_cycles",
        ),
        (
            {"scheduler": "step", "scheduler_options": {"warmup_type": "cubic"}},
            "scheduler_options for step: .*warmup_type",
        ),
        ({"scheduler": "polynomial", "scheduler_options": {"num_cycles": 2}}, "for polynomial: Option 'num_cycles'"),
        (
            {"optimizer": "sgd", "optimizer_options": {"betas": [0.9, 0.99]}},
            "optimizer_options for sgd: Option 'betas'",
        ),
        ({"optimizer": "adamm"}, "unknown model.optimization.optimizer 'adamm'"),
        (
            {"warmup": -1},
            r"model.optimization.warmup must be >= 0 \(a share in \[0, 1\) or a number of steps\), got -1",
        ),
        (
            {"scheduler": "constant", "warmup": 0.1},
            "scheduler 'constant' has no warmup: set model.optimization.warmup 0",
        ),
    ],
)
def test_optimization_options_are_checked_when_built(options, message):
    with pytest.raises(ConfigError, match=message):
        OptimizationOptions(**options)


def test_optimization_options_accept_what_each_part_takes():
    options = OptimizationOptions(
        optimizer="sgd", optimizer_options={"momentum": 0.9, "nesterov": True}, scheduler="warmup_stable_decay",
        scheduler_options={"decay_ratio": 0.3, "min_lr_ratio": 0.1}, warmup=5,
    )  # fmt: skip
    assert options.scheduler_options == {"decay_ratio": 0.3, "min_lr_ratio": 0.1}
    assert OptimizationOptions.of({"warmup": 5, "scheduler": "cosine"}) == OptimizationOptions(
        warmup=5, scheduler="cosine"
    )


def test_unknown_or_misconfigured_optimizers_fail_in_one_line():
    with pytest.raises(
        ConfigError,
        match="unknown model.optimization.optimizer 'adamm'; choose from " + re.escape(str(sorted(OPTIMIZERS))),
    ):
        build_optimizer("adamm", [], 1e-3)
    with pytest.raises(ConfigError, match="model.optimization.optimizer_options for 'sgd'"):
        build_optimizer("sgd", [{"params": [nn.Parameter(torch.zeros(1))]}], 1e-3, nesterov=True)  # needs momentum


NAMES = [
    ("encoder.embeddings.word_embeddings.weight", (10, 4)),
    ("encoder.embeddings.LayerNorm.weight", (4,)),
    ("encoder.encoder.layer.0.attention.self.query.weight", (4, 4)),
    ("encoder.encoder.layer.0.attention.self.query.bias", (4,)),
    ("encoder.encoder.layer.1.output.dense.weight", (4, 4)),
    ("pooler.score.0.weight", (4, 4)),
    ("head.linear.weight", (2, 4)),
    ("head.linear.bias", (2,)),
]


# What the model finds for these names (project.model.families.parameter_depths).
DEPTHS = {name: 0 if ".embeddings." in name else 2 if ".layer.1." in name else 1 for name, _ in NAMES[:5]}


def named_parameters():
    return [(name, nn.Parameter(torch.zeros(shape))) for name, shape in NAMES]


def summary(groups):
    return {group["name"]: (group["lr"], group["weight_decay"], len(group["params"])) for group in groups}


def test_groups_split_encoder_and_head_and_never_decay_biases_or_norms():
    groups = summary(parameter_groups(named_parameters(), 1e-4, 0.01, num_layers=2, head_learning_rate=1e-3))
    assert groups == {
        "encoder": (1e-4, 0.01, 3),
        "encoder_no_decay": (1e-4, 0.0, 2),
        "head": (1e-3, 0.01, 2),
        "head_no_decay": (1e-3, 0.0, 1),
    }


def test_layer_wise_decay_is_geometric_from_the_top_layer_down_to_the_embeddings():
    groups = summary(parameter_groups(named_parameters(), 1.0, 0.0, num_layers=2, layer_decay=0.5, depths=DEPTHS))
    assert groups["layer_2"][0] == 1.0  # the top layer
    assert groups["layer_1"][0] == 0.5 == groups["layer_1_no_decay"][0]
    assert groups["embeddings"][0] == 0.25 == groups["embeddings_no_decay"][0]  # lowest
    assert groups["head"][0] == 1.0


def test_layer_decay_takes_the_depths_the_caller_found_not_the_names():
    swapped = {**DEPTHS, **{name: 3 - depth for name, depth in DEPTHS.items() if ".layer." in name}}
    groups = {group["name"]: group for group in parameter_groups(named_parameters(), 1.0, 0.0, num_layers=2,
                                                                  layer_decay=0.5, depths=swapped)}  # fmt: skip
    assert [p.shape for p in groups["layer_1"]["params"]] == [(4, 4)] and groups["layer_1"]["lr"] == 0.5
    assert len(groups["layer_2"]["params"]) == 1 and len(groups["layer_2_no_decay"]["params"]) == 1
    with pytest.raises(ValueError, match="layer_decay needs the encoder parameters' depths"):
        parameter_groups(named_parameters(), 1.0, 0.0, num_layers=2, layer_decay=0.5)


def test_frozen_parameters_join_no_group_and_bad_decay_is_refused():
    parameters = named_parameters()
    parameters[0][1].requires_grad_(False)
    assert sum(len(g["params"]) for g in parameter_groups(parameters, 1e-3, 0.0, num_layers=2)) == len(NAMES) - 1
    with pytest.raises(ConfigError, match=r"model.optimization.layer_decay must be in \(0, 1\]"):
        parameter_groups(parameters, 1e-3, 0.0, num_layers=2, layer_decay=1.5)


def test_a_zero_head_learning_rate_is_a_real_value_not_unset():
    groups = summary(parameter_groups(named_parameters(), 1e-4, 0.0, num_layers=2, head_learning_rate=0.0))
    assert groups["head"][0] == 0.0 and groups["encoder"][0] == 1e-4


def test_l1_penalty_is_the_sum_of_absolute_values():
    assert l1_penalty([torch.tensor([1.0, -2.0]), torch.tensor([[-3.0]])]).item() == 6.0


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_is_built_with_named_groups(name):
    optimizer = build_optimizer(name, parameter_groups(named_parameters(), 1e-3, 0.01, num_layers=2), 1e-3)
    assert [group["name"] for group in optimizer.param_groups] == [
        "encoder",
        "encoder_no_decay",
        "head",
        "head_no_decay",
    ]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_is_chosen_where_torch_has_it_unless_options_choose(name):
    def built(**options):
        return build_optimizer(name, [{"params": [nn.Parameter(torch.zeros(3))]}], 1e-3, **options).defaults

    assert bool(built(allow_fused=True).get("fused")) == (name in FUSED)
    assert not built(allow_fused=False).get("fused")
    assert not built(allow_fused=True, foreach=True).get("fused")  # the user's choice wins
