"""GPT-2 loading: local directory through from_pretrained, truncation, offline errors."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import GPT2Config, GPT2Model

from one4all.errors import UserError
from one4all.models.backbone import BackboneSpec, load_backbone
from tests.conftest import TINY_GPT2


@pytest.fixture(scope="module")
def saved_gpt2(tmp_path_factory):
    """A tiny random GPT-2 written with save_pretrained, as a user's local weights would be."""
    torch.manual_seed(123)
    model = GPT2Model(GPT2Config(n_layer=4, **TINY_GPT2))
    path = tmp_path_factory.mktemp("gpt2-local")
    model.save_pretrained(path)
    return path, model


def test_pretrained_from_local_directory_truncates_and_freezes(saved_gpt2):
    path, original = saved_gpt2
    loaded = load_backbone(BackboneSpec(init="pretrained", path=str(path), n_layers=2))
    assert loaded.pretrained and loaded.source == str(path)
    assert len(loaded.model.h) == 2 and loaded.model.config.n_layer == 2
    assert not any(p.requires_grad for p in loaded.model.parameters())
    for name in ("wpe.weight", "h.1.attn.c_attn.weight", "h.1.mlp.c_proj.bias", "ln_f.weight"):
        assert torch.equal(loaded.model.state_dict()[name], original.state_dict()[name]), name
    # the unused token table is dropped
    assert loaded.model.wte.weight.shape[0] == 1


def test_auto_uses_local_weights(saved_gpt2):
    path, _ = saved_gpt2
    assert load_backbone(BackboneSpec(init="auto", path=str(path), n_layers=2)).pretrained


def test_pretrained_offline_without_weights_names_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as err:
        load_backbone(BackboneSpec(init="pretrained", path="gpt2-not-cached-anywhere"))
    message = str(err.value)
    assert "model.backbone.path" in message and "init=random" in message and "\n" not in message


def test_auto_falls_back_to_random_loudly(monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        loaded = load_backbone(BackboneSpec(init="auto", path="gpt2-not-cached-anywhere", n_layers=1,
                                            config=TINY_GPT2))
    assert not loaded.pretrained and "RANDOMLY INITIALISED" in caplog.text


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a = load_backbone(BackboneSpec(init="random", n_layers=1, seed=3, config=TINY_GPT2)).model
    after = torch.rand(1)
    b = load_backbone(BackboneSpec(init="random", n_layers=1, seed=3, config=TINY_GPT2)).model
    assert torch.equal(before, after)
    assert torch.equal(a.h[0].attn.c_attn.weight, b.h[0].attn.c_attn.weight)


def test_unknown_init_and_too_many_layers(saved_gpt2):
    with pytest.raises(UserError, match="init"):
        load_backbone(BackboneSpec(init="bogus"))
    with pytest.raises(UserError, match="n_layers"):
        load_backbone(BackboneSpec(init="pretrained", path=str(saved_gpt2[0]), n_layers=9))
