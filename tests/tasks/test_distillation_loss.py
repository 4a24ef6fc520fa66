"""Each task's distillation loss (`Task.distillation_loss`): the formula it promises, zero when the student already
says what the teacher says, and gradients of one size whatever the temperature."""

import pytest
import torch
import torch.nn.functional as F

from project.tasks import build_task


def test_single_label_is_t_squared_kl_of_the_softened_teacher_and_student():
    torch.manual_seed(0)
    task = build_task("single_label", 3)
    logits, teacher_logits = torch.randn(5, 3), torch.randn(5, 3)
    teacher = teacher_logits.softmax(-1)
    temperature = 2.0
    p = (teacher_logits / temperature).softmax(-1)  # softening probabilities through their logs = through logits
    q = (logits / temperature).softmax(-1)
    expected = temperature**2 * (p * (p.log() - q.log())).sum(-1).mean()
    torch.testing.assert_close(task.distillation_loss(logits, teacher, temperature), expected)
    assert task.distillation_loss(teacher_logits, teacher, temperature).abs() < 1e-6  # the teacher itself: no loss


def test_multi_label_is_binary_cross_entropy_on_the_teachers_soft_targets():
    torch.manual_seed(0)
    task = build_task("multi_label", 4)
    logits, teacher = torch.randn(6, 4), torch.rand(6, 4).clamp(0.05, 0.95)
    expected = F.binary_cross_entropy(logits.sigmoid(), teacher)
    torch.testing.assert_close(task.distillation_loss(logits, teacher, 1.0), expected)


def test_regression_is_the_squared_distance_to_the_teachers_value_at_any_temperature():
    task = build_task("regression", 1)
    logits, teacher = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.5], [2.0]])
    for temperature in (1.0, 4.0):
        assert task.distillation_loss(logits, teacher, temperature) == pytest.approx(0.125)


def test_the_temperature_squared_keeps_the_gradients_size():
    torch.manual_seed(0)
    task = build_task("single_label", 5)
    teacher = torch.randn(64, 5).softmax(-1)
    sizes = []
    for temperature in (4.0, 8.0):
        logits = torch.randn(64, 5, generator=torch.Generator().manual_seed(1)).requires_grad_()
        task.distillation_loss(logits, teacher, temperature).backward()
        sizes.append(float(logits.grad.norm()))  # the KL's gradient shrinks as 1/T^2 at high T; T^2 undoes it
    assert sizes[0] == pytest.approx(sizes[1], rel=0.3)
