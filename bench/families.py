"""Wall time of one training step per encoder family, relative to BERT of the same size.

    python bench/families.py [--rounds 5] [--json speed.json]

Every family is built at BERT's size (hidden 256, 4 layers, 4 heads, intermediate 1024; each family's own names for
them) with its real checkpoints' other settings (ALBERT's 128-wide embedding and shared layers, BigBird's 64-token
blocks; Longformer's window is 64 tokens here, see EXTRA). A step is forward + backward + AdamW on a random fp32 batch
of 16 texts of 64 tokens, sent the inputs the product sends that family (`project.model.families.accepted_inputs`).
One untimed step first; then, round after round, one timed step of each family with the order rotated each round
(so a slow spell on a shared machine falls on every family alike); the median per family is reported.
`--json` writes what scripts/family_table.py puts into docs/models.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe, print_table  # noqa: E402
from project.model.families import accepted_inputs  # noqa: E402

FAMILIES = [
    "bert", "roberta", "xlm-roberta", "camembert", "distilbert", "albert", "electra", "deberta", "deberta-v2", "mpnet",
    "modernbert", "funnel", "big_bird", "longformer", "ernie", "xlm", "roformer", "megatron-bert", "convbert",
    "nystromformer",
]  # fmt: skip
HIDDEN, LAYERS, HEADS, INTERMEDIATE, VOCAB = 256, 4, 4, 1024, 1000
BATCH, LENGTH = 16, 64
BERT_SIZE = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                 intermediate_size=INTERMEDIATE)  # fmt: skip
# Families that name their size their own way, or whose real checkpoints differ from BERT in what costs time.
OWN_SIZE = {
    "distilbert": dict(dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=INTERMEDIATE),
    "funnel": dict(
        d_model=HIDDEN,
        n_head=HEADS,
        d_head=HIDDEN // HEADS,
        d_inner=INTERMEDIATE,
        block_sizes=[2, 2],
        num_decoder_layers=2,
    ),  # fmt: skip
    "xlm": dict(emb_dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, n_langs=1),
}
EXTRA = {
    "albert": dict(embedding_size=128),
    "electra": dict(embedding_size=HIDDEN),
    "convbert": dict(embedding_size=HIDDEN),
    "roberta": dict(type_vocab_size=1, pad_token_id=1),
    "xlm-roberta": dict(type_vocab_size=1, pad_token_id=1),
    "camembert": dict(type_vocab_size=1, pad_token_id=1),
    # longformer-base's window is 512: every batch is padded to 512 tokens, 45x BERT's step in a one-step probe (AMD
    # EPYC, 1 thread), too slow to repeat here. A 64-token window measures the attention itself.
    "longformer": dict(type_vocab_size=1, pad_token_id=1, attention_window=64),
    "deberta": dict(type_vocab_size=0),
    "deberta-v2": dict(type_vocab_size=0),
    "big_bird": dict(block_size=64, num_random_blocks=3),
    "modernbert": dict(pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3),  # in VOCAB
}
NOTES = {
    "longformer": "attention window 64; longformer-base's 512 pads every batch to 512 tokens (45x BERT, one step)",
    "big_bird": "64 tokens are too few for block-sparse attention: it runs full attention",
    "funnel": "2 blocks of 2 layers with pooling, then a 2-layer decoder back to full length",
    "albert": "one layer's weights shared by the 4",
}


def build(family: str) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModel

    options = OWN_SIZE.get(family, BERT_SIZE) | EXTRA.get(family, {})
    config = AutoConfig.for_model(family, vocab_size=VOCAB, max_position_embeddings=512 + 2, **options)
    config.architectures = []
    torch.manual_seed(0)
    return AutoModel.from_config(config).train()


def batch_for(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, VOCAB, (BATCH, LENGTH), generator=generator)
    mask = torch.ones_like(input_ids)
    mask[: BATCH // 2, LENGTH // 2 :] = 0  # half the rows padded to half length, like a real batch
    values = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(input_ids)}
    return {name: values[name] for name in accepted_inputs(model)}


def step_seconds(model, optimizer, batch) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    model(**batch).last_hidden_state.float().pow(2).mean().backward()
    optimizer.step()
    return time.perf_counter() - start


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least disturbed on a shared CPU)")
    parser.add_argument("--families", nargs="*", default=FAMILIES)
    parser.add_argument("--json", type=Path, help="also write the results here for scripts/family_table.py")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    families = ["bert", *(family for family in args.families if family != "bert")]
    runs = {}
    for family in families:
        model = build(family)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        runs[family] = (model, optimizer, batch_for(model))
        step_seconds(*runs[family])  # warm-up: allocates the optimizer's state
    times = {family: [] for family in families}
    for round_index in range(args.rounds):
        shift = round_index % len(families)
        for family in families[shift:] + families[:shift]:
            times[family].append(step_seconds(*runs[family]))
    medians = {family: statistics.median(values) for family, values in times.items()}
    ratios = {family: medians[family] / medians["bert"] for family in families}
    settings = (f"fp32 training step (forward, backward, AdamW), batch {BATCH} x {LENGTH} tokens, hidden {HIDDEN}, "
                f"{LAYERS} layers, {HEADS} heads, intermediate {INTERMEDIATE}; median of {args.rounds} rounds, "
                f"{args.threads} torch thread(s)")  # fmt: skip
    rows = [[family, f"{1000 * medians[family]:.0f}", f"{ratios[family]:.2f}", NOTES.get(family, "")]
            for family in families]  # fmt: skip
    print_table(settings + ".", ["family", "step (ms)", "vs BERT", "note"], rows)
    if args.json:
        result = {"settings": settings, "machine": describe(), "commit": commit(), "notes": NOTES,
                  "ms": {family: round(1000 * value, 1) for family, value in medians.items()},
                  "ratios": {family: round(value, 2) for family, value in ratios.items()}}  # fmt: skip
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
