import pytest
import torch
from torch import nn

from project.errors import ConfigError
from project.optim.optimizers import build_optimizer, decay_groups
from project.optim.schedules import SCHEDULES, build_schedule, warmup_steps


def lr_curve(name: str, warmup: int, total: int) -> list[float]:
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    schedule = build_schedule(name, optimizer, warmup, total)
    curve = []
    for _ in range(total):
        curve.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return curve


def test_linear_warmup_then_linear_decay_by_hand():
    # Independent reference: the formula, not transformers (which our schedule calls).
    expected = [step / 4 if step < 4 else (10 - step) / 6 for step in range(10)]
    assert lr_curve("linear", 4, 10) == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_warms_up_linearly_to_the_peak(name):
    curve = lr_curve(name, 5, 50)
    assert curve[:6] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert max(curve) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "warmup, total, steps", [(0.1, 200, 20), (0.0, 10, 0), (0.5, 3, 1), (7, 100, 7), (7.0, 100, 7), (0, 5, 0)]
)
def test_warmup_is_a_ratio_below_one_and_a_step_count_otherwise(warmup, total, steps):
    assert warmup_steps(warmup, total) == steps


@pytest.mark.parametrize("warmup", [100, 1.5, -1])
def test_impossible_warmup_is_a_config_error(warmup):
    with pytest.raises(ConfigError, match=f"model.warmup={warmup}"):
        warmup_steps(warmup, 100)


def test_unknown_names_list_the_choices():
    with pytest.raises(ConfigError, match=r"unknown scheduler 'lineer'; choose from \[.*'linear'"):
        lr_curve("lineer", 1, 10)
    with pytest.raises(ConfigError, match=r"unknown optimizer 'adamm'; choose from \['adamw'\]"):
        build_optimizer("adamm", [], 1e-3)


def test_biases_and_norm_weights_are_not_decayed():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    model[0].weight.requires_grad_(False)  # frozen parameters belong to no group
    groups = {group["name"]: group for group in decay_groups(model.named_parameters(), 0.01)}
    assert groups["decay"]["weight_decay"] == 0.01 and groups["no_decay"]["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in groups["decay"]["params"]] == [(4, 4)]
    assert {id(p) for p in groups["no_decay"]["params"]} == {id(model[1].bias), id(model[2].weight), id(model[2].bias)}
    optimizer = build_optimizer("adamw", list(groups.values()), 1e-3)
    assert [group["name"] for group in optimizer.param_groups] == ["decay", "no_decay"]
