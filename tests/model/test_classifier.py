"""The encoder gets only the inputs it takes: XLM's forward accepts token_type_ids but looks them up among its
words, so a pair's segment ids sent to it would change every vector; BERT's change its output, as they should."""

import torch
from transformers import AutoConfig, AutoModel

from project.model.classifier import pooled_output
from project.model.pooling import build_pooler


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
