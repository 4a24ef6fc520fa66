"""Adversarial training on the word embeddings: FGM (Miyato et al., 2017) and PGD (Madry et al., 2018).

The classic recipe calls backward, edits the embedding matrix in place, calls backward again and restores the
matrix, which fights Lightning's automatic optimization (accumulation, clipping, 16-bit loss scaling, DDP sync).
Here everything happens inside the training loss instead:
1. the clean loss's gradients come from `torch.autograd.grad` (no `.grad` is touched);
2. the attack is a perturbation r of the embedding matrix, added to the looked-up embeddings of the batch's tokens
   (the same as looking up rows of W + r, without ever writing to W, so W is bit-for-bit unchanged);
3. the returned objective is clean.detach() + adversarial loss + a zero whose backward yields g_clean, so
   Lightning's single backward applies exactly g_clean + g_adversarial.
Cost: two forwards and two backwards per micro-batch for FGM, as in the classic recipe; PGD adds one forward and
one input-only backward per extra step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from project.core.errors import TrainingStopped
from project.tricks.base import Trick, register_trick, require


def clean_gradients(host, clean: Tensor, scale: float) -> tuple[list[Tensor], list[Tensor | None], Tensor]:
    """(parameters, their clean gradients, the word-embedding gradient) without touching `.grad`."""
    parameters = [p for _, p in host.named_parameters() if p.requires_grad]
    embedding = host.word_embeddings()
    gradients = torch.autograd.grad(clean * scale, parameters, allow_unused=True)
    gradients = [None if g is None else g / scale for g in gradients]
    found = [g for p, g in zip(parameters, gradients, strict=True) if p is embedding]
    if not found:  # `check` saw them trainable: something froze them since (a custom trick, a callback)
        raise TrainingStopped(
            "the word embeddings that the adversarial attack perturbs were frozen after the run started (by a custom "
            "trick or callback?); keep them trainable or leave out model.tricks.fgm/pgd"
        )
    return parameters, gradients, found[0]


class GradientInjection(torch.autograd.Function):
    """A zero whose backward hands each parameter a given gradient (times the incoming one, e.g. 1/accumulation).

    A custom function rather than sum(<p - p.detach(), g>): that is 0 * inf = nan in value when fp16 gradients
    overflow, where the loss scaler expects finite losses and non-finite gradients (it then skips the step).
    """

    @staticmethod
    def forward(ctx, gradients: list[Tensor | None], *parameters: Tensor) -> Tensor:
        ctx.gradients = gradients
        return parameters[0].new_zeros(())

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        return None, *(None if g is None else g * grad_output for g in ctx.gradients)


def with_gradients(objective: Tensor, parameters: list[Tensor], gradients: list[Tensor | None]) -> Tensor:
    """`objective` plus a term worth 0 whose gradient with respect to each parameter is the given gradient."""
    return objective + GradientInjection.apply(gradients, *parameters)


def normalised_step(gradient: Tensor, size: float) -> Tensor:
    """`size` along the gradient's direction (Frobenius norm over the whole matrix); zero if the norm is not usable."""
    norm = torch.linalg.vector_norm(gradient.float())
    usable = torch.isfinite(norm) & (norm > 0)
    # torch.where instead of an `if`: no host sync per step on a GPU.
    return torch.where(usable, gradient * (size / norm.clamp_min(1e-12)), torch.zeros_like(gradient))


class EmbeddingAttack(Trick):
    loss_order = 2  # outermost: the attack perturbs whatever the inner tricks compute
    exclusive_group = "adversarial attacks"

    def __init__(self, epsilon: float):
        require(epsilon >= 0, f"{self.name}.epsilon", f"must be >= 0, got {epsilon}")
        self.epsilon = epsilon

    def check(self, host) -> None:
        # The attack follows the gradient of the word-embedding matrix, which a frozen matrix does not have.
        require(
            host.word_embeddings().requires_grad,
            self.name,
            "attacks the word embeddings, which are frozen: set model.encoder_options.word_embeddings: train "
            "(and model.encoder_options.frozen_layers: 0)",
        )

    def loss(self, host, batch, perturbation, inner):
        clean, logits = inner(batch, perturbation)
        # fp16 training scales the loss so small gradients survive half precision; our own autograd.grad must too.
        scale = host.loss_scale()
        parameters, gradients, embedding_gradient = clean_gradients(host, clean, scale)
        if self.epsilon == 0:  # no attack: the adversarial pass would only repeat the clean loss
            return with_gradients(clean.detach(), parameters, gradients), logits
        embedding = host.word_embeddings()
        adversarial = self.attack(inner, batch, embedding_gradient, embedding, scale)
        host.log("train/adversarial_loss", adversarial, batch_size=len(logits))
        return with_gradients(clean.detach() + adversarial, parameters, gradients), logits

    def attack(self, inner, batch, gradient: Tensor, embedding: Tensor, scale: float) -> Tensor:
        """The adversarial loss at the final perturbation."""
        raise NotImplementedError


@register_trick("fgm")
class FGM(EmbeddingAttack):
    name = "fgm"

    def __init__(self, epsilon: float = 1.0):
        """epsilon: norm of the perturbation of the whole embedding matrix (0 switches the attack off)."""
        super().__init__(epsilon)

    def attack(self, inner, batch, gradient, embedding, scale):
        return inner(batch, normalised_step(gradient, self.epsilon).detach())[0]


@register_trick("pgd")
class PGD(EmbeddingAttack):
    name = "pgd"

    def __init__(self, epsilon: float = 1.0, alpha: float = 0.3, steps: int = 3):
        """epsilon: radius of the ball the perturbation is projected into; alpha: size of each ascent step;
        steps: ascent steps (K). The update is clean gradient + the gradient at the K-th perturbation."""
        super().__init__(epsilon)
        require(alpha > 0, "pgd.alpha", f"must be > 0, got {alpha}")
        require(steps >= 1, "pgd.steps", f"must be >= 1, got {steps}")
        self.alpha, self.steps = alpha, steps

    def attack(self, inner, batch, gradient, embedding, scale):
        perturbation = torch.zeros_like(embedding)
        for step in range(self.steps):
            perturbation = project(perturbation + normalised_step(gradient, self.alpha), self.epsilon).detach()
            adversarial = inner(batch, perturbation)[0]
            if step < self.steps - 1:
                # The next direction: gradient with respect to the embeddings only (no weight gradients computed).
                (gradient,) = torch.autograd.grad(adversarial * scale, embedding)
        return adversarial


def project(perturbation: Tensor, radius: float) -> Tensor:
    """Back onto the ball of the given radius (Frobenius norm) if the perturbation left it."""
    norm = torch.linalg.vector_norm(perturbation.float())
    return perturbation * (radius / norm.clamp_min(1e-12)).clamp(max=1.0)
