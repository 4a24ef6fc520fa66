"""The encoder gets only the inputs it takes: XLM's forward accepts token_type_ids but looks them up among its
words, so a pair's segment ids sent to it would change every vector; BERT's change its output, as they should."""

import re
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel

from project.model.classifier import PooledClassifier, pooled_output
from project.model.encoder import load_encoder
from project.model.heads import ClassifierHead
from project.model.pooling import build_encoder_pooler, build_pooler
from tests.model.family_zoo import BLOCK_SPARSE_FROM, FAMILIES, PADDING_DEPENDENT, padded_batch, padding_dependent

DOCS = Path(__file__).parents[2] / "docs" / "models.md"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("length", "real"), [(12, 7), (41, 25)])
def test_a_text_scores_the_same_alone_and_in_a_padded_batch_unless_its_family_says_otherwise(
    family, length, real, family_encoder
):
    torch.manual_seed(0)
    encoder = load_encoder(family_encoder(family))
    pooler = build_encoder_pooler("mean", encoder.config)
    model = PooledClassifier(encoder, pooler, ClassifierHead(32, 3)).eval()
    input_ids, attention_mask = padded_batch(encoder, length, real)
    with torch.no_grad():
        # The batch first: BigBird switches itself to full attention for good after its first short input.
        in_batch, logits_in_batch = model.embed(input_ids, attention_mask), model(input_ids, attention_mask)[1:]
        alone = model.embed(input_ids[1:, :real], attention_mask[1:, :real])
        logits_alone = model.head(alone)
    difference = (alone - in_batch[1:]).abs().max().item()
    if padding_dependent(family, length):
        assert difference > 1e-4  # documented in docs/models.md; if this fails, the family notes are out of date
    else:
        assert difference <= 1e-4
        torch.testing.assert_close(logits_alone, logits_in_batch, rtol=0, atol=1e-4)


def test_the_family_notes_name_the_families_that_depend_on_padding():
    notes = DOCS.read_text(encoding="utf-8").split("## Family notes", 1)[1]
    paragraph = next(item for item in notes.split("\n- ") if item.startswith("**Padding invariance.**"))
    named = {name.lower().replace("ö", "o") for name in re.findall(r"\*\*(\w+)\*\*", " ".join(paragraph.split()))}
    assert named == {family.replace("_", "") for family in PADDING_DEPENDENT | set(BLOCK_SPARSE_FROM)}


def test_bigbird_runs_block_sparse_attention_on_long_batches_whatever_came_before(family_encoder):
    def scores(model, batch):
        with torch.no_grad():
            return model(*batch)

    models = []
    for _ in range(2):
        torch.manual_seed(0)
        encoder = load_encoder(family_encoder("big_bird"))
        models.append(PooledClassifier(encoder, build_encoder_pooler("mean", encoder.config), ClassifierHead(32, 3)))
    fresh, used = (model.eval() for model in models)
    long_batch, short_batch = padded_batch(fresh.encoder, 41, 25), padded_batch(fresh.encoder, 12, 7)
    scores(used, short_batch)  # transformers' BigBird would switch to full attention here and stay there
    assert used.encoder.attention_type == "original_full"
    torch.testing.assert_close(scores(used, long_batch), scores(fresh, long_batch), rtol=0, atol=1e-6)
    assert used.encoder.attention_type == "block_sparse"


def tiny(family, **options):
    config = AutoConfig.for_model(family, vocab_size=40, max_position_embeddings=32, **options)
    torch.manual_seed(0)
    return AutoModel.from_config(config).eval()


def test_segment_ids_reach_only_encoders_that_take_them():
    ids, mask = torch.randint(5, 40, (2, 9)), torch.ones(2, 9, dtype=torch.long)
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    xlm = tiny("xlm", emb_dim=32, n_layers=1, n_heads=2)
    bert = tiny("bert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    with torch.no_grad():
        for encoder, changes in ((xlm, False), (bert, True)):
            pooler = build_pooler("mean", 32, 1)
            with_types = pooled_output(encoder, pooler, ids, mask, types)
            without = pooled_output(encoder, pooler, ids, mask, None)
            assert torch.equal(with_types, without) != changes
