import pytest
import torch
import torch.nn.functional as F

from project.tasks.multi_label import symmetric_bernoulli_kl
from project.tasks.single_label import symmetric_categorical_kl
from project.tricks.rdrop import RDrop
from tests.conftest import tiny_setup

pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")


def test_categorical_divergence_is_the_mean_of_both_kls():
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    kl_ab = F.kl_div(b.log_softmax(-1), a.log_softmax(-1), log_target=True, reduction="batchmean")
    kl_ba = F.kl_div(a.log_softmax(-1), b.log_softmax(-1), log_target=True, reduction="batchmean")
    torch.testing.assert_close(symmetric_categorical_kl(a, b), (kl_ab + kl_ba) / 2)


def test_bernoulli_divergence_is_the_mean_of_both_kls_summed_over_labels():
    a, b = torch.randn(5, 4), torch.randn(5, 4)

    def kl(p, q):  # KL(p || q) of Bernoullis, summed over labels, averaged over examples
        return (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).sum(-1).mean()

    p, q = a.sigmoid(), b.sigmoid()
    torch.testing.assert_close(symmetric_bernoulli_kl(a, b), (kl(p, q) + kl(q, p)) / 2)


def test_two_dropout_passes_disagree_in_training_and_agree_without_dropout(tiny_csv, tiny_encoder):
    model, data = tiny_setup(tiny_csv, tiny_encoder, head={"dropout": 0.5})
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    trick = RDrop(alpha=2.0)

    model.eval()
    objective, _ = trick.loss(model, batch, None, inner=model.supervised_loss)
    torch.testing.assert_close(objective, model.supervised_loss(batch, None)[0])  # no dropout: divergence 0

    model.train()
    torch.manual_seed(0)
    objective, logits = trick.loss(model, batch, None, inner=model.supervised_loss)
    torch.manual_seed(0)  # the same dropout masks, drawn by hand
    stacked = {key: torch.cat([value, value]) for key, value in batch.items()}
    mean_loss, both = model.supervised_loss(stacked, None)
    first, second = both.chunk(2)
    assert not torch.allclose(first, second)  # independent dropout masks for the two copies
    torch.testing.assert_close(objective, mean_loss + 2.0 * symmetric_categorical_kl(first, second))
    torch.testing.assert_close(logits, first)
