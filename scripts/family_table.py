"""Render docs/models.md's family table from recorded outcomes, never by hand.

    FAMILY_MATRIX_RESULTS=/tmp/matrix.json python -m pytest tests/model/test_family_matrix.py -m "slow or not slow"
    python bench/families.py --json /tmp/speed.json
    python scripts/family_table.py --results /tmp/matrix.json --speed /tmp/speed.json

stores both in docs/families.json and rewrites the table between the markers in docs/models.md. Without
--results/--speed it re-renders from docs/families.json; `--check` only compares (exit 1 when the page differs).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "families.json"
PAGE = ROOT / "docs" / "models.md"
START, END = "<!-- family-table:start -->", "<!-- family-table:end -->"
# (column title, recorded column) in table order.
COLUMNS = [
    ("fit", "fit"), ("pairs", "pairs"), ("segment ids sent", "segment ids"), ("poolers", "poolers"),
    ("HF folder", "huggingface"), ("TorchScript", "torchscript"), ("ONNX", "onnx"), ("ONNX int8", "onnx_int8"),
    ("sentence-transformers", "sentence_transformers"), ("ONNX predict", "onnx predict"), ("embed", "embed"),
    ("serve", "serve"),
]  # fmt: skip
OUTCOME_PREFIXES = ("passed", "refused: ", "known gap: ", "yes", "no", "all ", "failed", "skipped")


def numbered(notes: list[str], note: str) -> int:
    """The number of `note` among the row's notes, added when new (one note serves every cell that needs it)."""
    if note not in notes:
        notes.append(note)
    return notes.index(note) + 1


def cell(outcome: str | None, notes: list[str]) -> str:
    """A table cell for one recorded outcome; reasons go to the row's notes, numbered."""
    if outcome is None:
        return "not run"
    if outcome == "passed":
        return "yes"
    if outcome.startswith("passed "):  # passed with a condition (a padding-dependent family's equal batches)
        return f"yes ({numbered(notes, outcome[len('passed ') :].replace('|', '/'))})"
    for prefix, word in (("refused: ", "refused"), ("known gap: ", "gap"), ("fixed? ", "xpass")):
        if outcome.startswith(prefix):
            note = re.sub(r"'/[^']*/([^/']+)'", r"'\1'", outcome[len(prefix) :]).replace("|", "/")
            return f"{word} ({numbered(notes, note)})"
    if ";" in outcome or "refused" in outcome:  # poolers: the ones refused
        return f"some ({numbered(notes, outcome.replace('|', '/'))})"
    return outcome


def render(data: dict) -> str:
    """The Markdown table (with the speed benchmark's machine line) for docs/models.md."""
    matrix, speed = data["matrix"], data.get("speed", {})
    lines = [
        "| family | " + " | ".join(title for title, _ in COLUMNS) + " | step time vs BERT | notes |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for family in data["families"]:
        outcomes, notes = matrix.get(family, {}), []
        blocked = set(outcomes) == {"fit"} and not outcomes["fit"].startswith("passed")
        cells = [cell(outcomes.get(key), notes) if not (blocked and key != "fit") else "—" for _, key in COLUMNS]
        if family in speed.get("notes", {}):
            notes.append(f"step time: {speed['notes'][family]}")
        ratio = speed.get("ratios", {}).get(family)
        cells.append(f"{ratio:.2f}" if isinstance(ratio, float) else (ratio or "not measured"))
        note_text = " ".join(f"({index}) {note}" for index, note in enumerate(notes, 1))
        lines.append(f"| {family} | " + " | ".join(cells) + f" | {note_text} |")
    if speed:
        lines += ["", f"Step times: {speed['settings']}; {speed['machine']}, commit {speed['commit']}."]
    return "\n".join(lines)


def with_table(page: str, table: str) -> str:
    start, end = page.index(START) + len(START), page.index(END)
    return page[:start] + "\n" + table + "\n" + page[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, help="the matrix's FAMILY_MATRIX_RESULTS file")
    parser.add_argument("--speed", type=Path, help="bench/families.py --json output")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when docs/models.md differs")
    args = parser.parse_args(argv)
    data = json.loads(DATA.read_text(encoding="utf-8")) if DATA.is_file() else {"matrix": {}}
    if args.results:
        sys.path.insert(0, str(ROOT))
        from tests.model.family_zoo import FAMILIES

        data["families"], data["matrix"] = FAMILIES, json.loads(args.results.read_text(encoding="utf-8"))
    if args.speed:
        data["speed"] = json.loads(args.speed.read_text(encoding="utf-8"))
    page = PAGE.read_text(encoding="utf-8")
    rendered = with_table(page, render(data))
    if args.check:
        if rendered != page:
            print(f"{PAGE}: the family table is not what {DATA} renders; run scripts/family_table.py")
            return 1
        return 0
    DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    PAGE.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
