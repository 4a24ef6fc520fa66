"""Encoder + pooler + head as one plain nn.Module: what exports, embeddings and the LightningModule share.

It holds no Lightning state, so it traces with `torch.jit.trace`, saves with `state_dict`, and runs anywhere torch
and transformers do. Parameter names (`encoder.`, `pooler.`, `head.`) are the LightningModule's own.
"""

from __future__ import annotations

from torch import Tensor, nn

from project.model.families import accepted_inputs, attention_for_length


def pooled_output(
    encoder: nn.Module,
    pooler: nn.Module,
    input_ids: Tensor | None,
    attention_mask: Tensor,
    token_type_ids: Tensor | None = None,
    inputs_embeds: Tensor | None = None,
) -> Tensor:
    """(B, T) token ids (or (B, T, H) embeddings) and mask -> (B, H') pooled vectors.

    `token_type_ids` reach the encoder only where it takes them (`accepted_inputs`): DistilBERT, ModernBERT and
    MPNet have no such argument, and XLM would look them up as words.
    """
    attention = attention_for_length(encoder.config, attention_mask.shape[1])
    if attention is not None and getattr(encoder, "attention_type", attention) != attention:
        # BigBird switches to full attention by itself for a batch too short for its blocks, but never back: a text's
        # score would depend on the batches before it. Chosen here for every batch, from the config's own choice.
        encoder.set_attention_type(attention)
    segments = {"token_type_ids": token_type_ids} if "token_type_ids" in accepted_inputs(encoder) else {}
    outputs = encoder(
        input_ids=input_ids,
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        output_hidden_states=pooler.needs_all_hidden_states,  # every layer only when the pooler reads them
        **segments,
    )
    length = attention_mask.shape[1]
    # Poolers see the mask's tokens only: BigBird's block-sparse attention pads its inner layers' outputs up to a
    # multiple of its block size (only the last one comes back trimmed).
    all_hidden_states = None
    if outputs.hidden_states is not None:
        all_hidden_states = tuple(layer[:, :length] for layer in outputs.hidden_states)
    return pooler(outputs.last_hidden_state[:, :length], attention_mask, all_hidden_states)


class PooledClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, pooler: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.pooler, self.head = encoder, pooler, head

    def embed(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """(B, T) -> (B, H') pooled vectors, before the head."""
        return pooled_output(self.encoder, self.pooler, input_ids, attention_mask, token_type_ids)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """(B, T) -> (B, num_outputs) logits."""
        return self.head(self.embed(input_ids, attention_mask, token_type_ids))
