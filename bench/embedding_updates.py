"""Time training steps of the multilingual encoder with its word embeddings trained, frozen, sparsely updated or
trimmed to the pieces the data uses.

    python bench/embedding_updates.py [--encoder multilingual-e5-small] [--steps 3] [--batch-size 16] [--rounds 2]
        [--repeat 1] [--rows 12106]

Each mode runs in its own process (so peak memory is its own): a TextClassifier with
`encoder_options.word_embeddings` set, the fit's AdamW parameter groups, and `--steps` full steps (forward, backward,
optimizer) on a fixed batch of Chinese and English reviews. The first step also allocates AdamW's state; the table
shows it apart from the median of the others, and the optimizer's share of those. The modes alternate for
`--rounds` rounds and each cell is the best round: on a shared machine, the least disturbed one.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import print_table  # noqa: E402

# `sparse` and `trimmed` are measured here only (no product option): in `sparse` the word embeddings give sparse
# gradients (the rows the batch uses) that torch.optim.SparseAdam updates lazily, while AdamW takes the rest; in
# `trimmed` the table keeps only the rows of the pieces the training data uses (`--rows`: 12,106, what the
# Chinese reviews' training split uses at max_length 128, of the 250k) and AdamW updates it with the rest.
MODES = ("train", "freeze", "sparse", "trimmed")
TEXTS = [
    "这家餐厅的菜很好吃，服务也很周到，下次还会再来。",
    "物流太慢了，包装也破了，非常失望，不会再买了。",
    "The battery lasts two days and the screen is bright enough to read outside.",
    "质量一般，价格偏贵，客服态度还可以。",
]


def run_mode(encoder: str, mode: str, steps: int, batch_size: int, repeat: int, rows: int) -> dict:
    import torch
    from transformers import AutoTokenizer

    from project.model.encoder import from_pretrained
    from project.optim.optimizers import build_optimizer, parameter_groups
    from project.training.module import TextClassifier

    start = time.perf_counter()
    option = "freeze" if mode == "freeze" else "train"
    model = TextClassifier(encoder=encoder, num_labels=2, encoder_options={"word_embeddings": option})
    tokenizer = from_pretrained(AutoTokenizer, encoder)
    load_s = time.perf_counter() - start
    table = model.encoder.get_input_embeddings()
    texts = [f"query: {TEXTS[i % len(TEXTS)] * repeat}" for i in range(batch_size)]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    if mode == "trimmed":  # the batch's pieces first, then other rows up to `rows`; the ids are mapped to the new rows
        used = batch["input_ids"].unique()
        others = torch.ones(table.num_embeddings, dtype=torch.bool)
        others[used] = False
        kept = torch.cat([used, others.nonzero().squeeze(1)[: rows - len(used)]])
        new_id = torch.empty(table.num_embeddings, dtype=torch.long)
        new_id[kept] = torch.arange(len(kept))
        batch["input_ids"] = new_id[batch["input_ids"]]
        trimmed = torch.nn.Embedding.from_pretrained(table.weight[kept].detach().clone(), freeze=False)
        model.encoder.set_input_embeddings(trimmed)
        table = trimmed
    named = [(name, p) for name, p in model.named_parameters() if not (mode == "sparse" and p is table.weight)]
    groups = parameter_groups(named, 5e-5, 0.01, model.encoder.config.num_hidden_layers)
    optimizers = [build_optimizer("adamw", groups, 5e-5, allow_fused=True)]
    if mode == "sparse":
        table.sparse = True
        optimizers.append(torch.optim.SparseAdam([table.weight], lr=5e-5))
        groups = [*groups, {"params": [table.weight]}]
    labels = torch.tensor([i % 2 for i in range(batch_size)])
    times, updates = [], []
    for _ in range(steps):
        began = time.perf_counter()
        logits = model(batch["input_ids"], batch["attention_mask"])
        torch.nn.functional.cross_entropy(logits, labels).backward()
        updating = time.perf_counter()
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - began)
        updates.append(time.perf_counter() - updating)
    trained = sum(p.numel() for group in groups for p in group["params"])
    return {
        "mode": mode,
        "trained": trained,
        "tokens": int(batch["input_ids"].shape[1]),
        "load_s": load_s,
        "first_s": times[0],
        "rest_s": statistics.median(times[1:]) if steps > 1 else float("nan"),
        "update_s": statistics.median(updates[1:]) if steps > 1 else float("nan"),
        "total_s": sum(times),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="multilingual-e5-small")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="each text repeated this many times (longer inputs)")
    parser.add_argument("--rows", type=int, default=12_106, help="rows of the trimmed table")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, in a child process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.encoder, args.mode, args.steps, args.batch_size, args.repeat, args.rows)))
        return
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            command = [sys.executable, __file__, "--encoder", args.encoder, "--steps", str(args.steps),
                       "--batch-size", str(args.batch_size), "--repeat", str(args.repeat), "--rows", str(args.rows),
                       "--mode", mode]  # fmt: skip
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            runs[mode].append(json.loads(output.strip().splitlines()[-1]))
    results = [{key: min(run[key] for run in runs[mode]) if key.endswith(("_s", "_mb")) else runs[mode][0][key]
                for key in runs[mode][0]} for mode in MODES]  # fmt: skip
    rows = [
        [r["mode"], f"{r['trained'] / 1e6:.1f}M", f"{r['load_s']:.1f}", f"{r['first_s']:.2f}", f"{r['rest_s']:.2f}",
         f"{r['update_s']:.2f}", f"{r['total_s']:.2f}", f"{r['peak_mb']:.0f}"]
        for r in results
    ]  # fmt: skip
    columns = ["word embeddings", "trained params", "load (s)", "step 1 (s)", "later steps, median (s)",
               "of which AdamW (s)", f"{args.steps} steps (s)", "peak RSS (MB)"]  # fmt: skip
    settings = (f"{args.encoder}, batch {args.batch_size} x {results[0]['tokens']} tokens, AdamW (fit's groups), "
                f"best of {args.rounds} alternating rounds.")  # fmt: skip
    print_table(settings, columns, rows)


if __name__ == "__main__":
    main()
