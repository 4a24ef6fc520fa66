import re
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from project.core.errors import ConfigError
from project.model.encoder import load_encoder, redraw_top_layers
from project.model.families import dropout_overrides, parameter_depths, transformer_layers
from project.optim.optimizers import parameter_groups
from project.training.module import TextClassifier
from tests.model.family_zoo import FAMILIES, write_family

HIDDEN, ATTENTION = 0.37, 0.23  # no family's default


def dropout_probabilities(encoder: nn.Module) -> set[float]:
    """Every dropout probability the built modules use: nn.Dropout's p, and the float attributes that functional
    dropout reads (ModernBERT's attention_dropout, XLM's dropout and attention_dropout, Longformer's dropout)."""
    found = set()
    for module in encoder.modules():
        if isinstance(module, nn.Dropout):
            found.add(round(module.p, 6))
        found |= {round(value, 6) for key, value in vars(module).items()
                  if "dropout" in key and isinstance(value, float)}  # fmt: skip
    return found


@pytest.mark.parametrize("family", FAMILIES)
def test_dropout_options_reach_every_familys_own_modules(family, family_encoder):
    encoder = load_encoder(family_encoder(family), hidden_dropout=HIDDEN, attention_dropout=ATTENTION)
    if family == "big_bird":  # block-sparse attention has no dropout; the full attention it runs on short texts has
        encoder.set_attention_type("original_full")
    used = dropout_probabilities(encoder)
    assert {HIDDEN, ATTENTION} <= used, used
    # Nothing keeps its pretrained value; 0.0 is a knob these options do not cover (Funnel's activation_dropout).
    assert used <= {HIDDEN, ATTENTION, 0.0}, used


def test_a_family_without_an_attention_dropout_is_refused_in_one_line(tmp_path):
    folder = write_family("fnet", tmp_path / "fnet", tokenizer=False)  # Fourier mixing instead of attention
    with pytest.raises(ConfigError) as error:
        load_encoder(folder, attention_dropout=0.1)
    message = str(error.value)
    assert message.startswith("model.encoder_options.attention_dropout: the fnet encoder has no attention dropout")
    assert "\n" not in message
    assert load_encoder(folder, hidden_dropout=0.2).config.hidden_dropout_prob == 0.2


def test_a_dropout_saved_as_a_whole_number_is_still_a_dropout_field():
    config = SimpleNamespace(model_type="toy", dropout=0, attention_dropout=0.1, use_cache=True)
    assert dropout_overrides(config, hidden_dropout=0.2, attention_dropout=None) == {"dropout": 0.2}


# Where each family's top layer lives, written out by hand: what the finder must agree with.
TOP_LAYER = {
    "distilbert": r"^transformer\.layer\.1\.",
    "modernbert": r"^layers\.1\.",
    "xlm": r"^(attentions|ffns|layer_norm1|layer_norm2)\.1\.",
    "funnel": r"^decoder\.layers\.0\.",  # after the 2 encoder blocks: the decoder upsamples to the full length
}
LAYERED = [family for family in FAMILIES if family != "albert"]


@pytest.mark.parametrize("family", LAYERED)
def test_reinit_top_layers_redraws_exactly_the_top_layer_of_every_family(family, family_encoder):
    pretrained = dict(load_encoder(family_encoder(family)).named_parameters())
    encoder = load_encoder(family_encoder(family))
    redraw_top_layers(encoder, 1)
    top = re.compile(TOP_LAYER.get(family, r"^encoder\.layer\.1\."))
    changed = {name for name, parameter in encoder.named_parameters() if not torch.equal(parameter, pretrained[name])}
    matrices = {
        name
        for name, parameter in encoder.named_parameters()
        if top.match(name) and name.endswith("weight") and parameter.ndim >= 2
    }
    assert matrices and matrices <= changed  # every weight matrix of the top layer is drawn anew
    assert all(top.match(name) for name in changed), sorted(changed)  # and nothing else changes


@pytest.mark.parametrize("family", LAYERED)
def test_layer_decay_groups_every_familys_layers(family, family_encoder):
    model = TextClassifier(encoder=family_encoder(family), optimization={"layer_decay": 0.5})
    depths, num_layers = model.encoder_depths
    groups = parameter_groups(model.named_parameters(), 1.0, 0.0, num_layers, layer_decay=0.5, depths=depths)
    by_group = {group["name"]: group for group in groups}
    assert {f"layer_{depth}" for depth in range(1, num_layers + 1)} <= set(by_group)
    assert num_layers == (3 if family == "funnel" else 2)
    top = re.compile(TOP_LAYER.get(family, r"^encoder\.layer\.1\."))
    in_top = {name for name in depths if depths[name] == num_layers}
    assert in_top and all(top.match(name.removeprefix("encoder.")) for name in in_top)
    embeddings = model.encoder.get_input_embeddings().weight
    assert any(parameter is embeddings for parameter in by_group["embeddings"]["params"])
    assert by_group["embeddings"]["lr"] == 0.5**num_layers and by_group[f"layer_{num_layers}"]["lr"] == 1.0


@pytest.mark.parametrize("family", LAYERED)
def test_frozen_layers_stop_the_backward_pass_below_the_top_layer_of_every_family(family, family_encoder):
    model = TextClassifier(encoder=family_encoder(family), encoder_options={"frozen_layers": 1})
    depths, num_layers = parameter_depths(model.encoder, "test", prefix="encoder.")
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    assert frozen == {name for name, depth in depths.items() if depth <= 1}  # the embeddings and layer 1, no more
    top = re.compile(TOP_LAYER.get(family, r"^encoder\.layer\.1\."))
    assert not any(top.match(name.removeprefix("encoder.")) for name in frozen)
    groups = parameter_groups(model.named_parameters(), 1.0, 0.0, num_layers)
    grouped = {id(parameter) for group in groups for parameter in group["params"]}
    assert not {id(parameter) for name, parameter in model.named_parameters() if name in frozen} & grouped
    # The bottom layer's output needs no gradient, so autograd records nothing below the first trained layer; in
    # MPNet every layer adds a relative position bias from one trained table above them all, so the backward pass
    # runs down to it (the frozen weights still get no gradient).
    bottom = transformer_layers(model.encoder, "test")[0][-1]
    outputs = []
    bottom.register_forward_hook(lambda module, args, output: outputs.append(output))
    model.train()
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    model(input_ids=ids, attention_mask=torch.ones_like(ids)).sum().backward()
    first = outputs[0][0] if isinstance(outputs[0], tuple) else outputs[0]
    assert first.requires_grad == (family == "mpnet")
    assert all(model.get_parameter(name).grad is None for name in frozen)
    in_top_layer = [p for name, p in model.named_parameters() if depths.get(name) == num_layers]
    assert any(p.grad is not None for p in in_top_layer)  # (Longformer's global-attention weights are unused here)


def test_albert_shares_one_layer_so_the_layer_options_are_refused(family_encoder):
    folder = family_encoder("albert")
    message = "the albert encoder shares 1 layer's weights across its 2 layers, so they cannot be told apart"
    with pytest.raises(ConfigError, match=f"^model.encoder_options.reinit_top_layers: {message}"):
        TextClassifier(encoder=folder, encoder_options={"reinit_top_layers": 1})
    with pytest.raises(ConfigError, match=f"^model.optimization.layer_decay: {message}"):
        TextClassifier(encoder=folder, optimization={"layer_decay": 0.9})
    with pytest.raises(ConfigError, match=f"^model.encoder_options.frozen_layers: {message}"):
        TextClassifier(encoder=folder, encoder_options={"frozen_layers": 1})


class Toy(nn.Module):
    """An encoder no transformers family has: parallel per-layer lists (as XLM keeps them) between an embedding and
    a final norm."""

    def __init__(self, layers: int = 2):
        super().__init__()
        self.config = type("Config", (), {"num_hidden_layers": 2, "model_type": "toy"})()
        self.embed = nn.Embedding(5, 4)
        self.mixers = nn.ModuleList(nn.Linear(4, 4) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(4) for _ in range(layers))
        self.final = nn.LayerNorm(4)


def test_layers_are_found_by_structure_and_what_sits_around_them_gets_the_outer_depths():
    layers = transformer_layers(Toy(), "x")
    assert [[type(part).__name__ for part in layer] for layer in layers] == [["Linear", "LayerNorm"]] * 2
    depths, num_layers = parameter_depths(Toy(), "x", prefix="encoder.")
    assert num_layers == 2 and depths["encoder.embed.weight"] == 0 and depths["encoder.final.bias"] == 3
    assert depths["encoder.mixers.1.weight"] == 2 == depths["encoder.norms.1.weight"]
    with pytest.raises(ConfigError, match="^opt: no transformer layers found in the toy encoder; unset it$"):
        transformer_layers(Toy(layers=0), "opt")
