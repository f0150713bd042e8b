"""The frozen backbones of the One-for-All network, behind one interface (base.py).

- gpt2.py: GPT-2 of any size (the default, `model/backbone=gpt2`).
- bert.py: BERT-family encoders, e.g. MiniLM (`model/backbone=minilm`, weights from `one4all[minilm]`).
- stand_ins.py: random stand-ins for the LM (the `no_lm` and `lm_to_attention` ablations).
"""

from __future__ import annotations

from one4all.errors import UserError
from one4all.models.backbones.base import Backbone, LMSpec
from one4all.models.backbones.stand_ins import build_stand_in


def load_backbone(spec: LMSpec) -> Backbone:
    """The backbone `spec` describes: its LM (pretrained or random, truncated, frozen), or with
    `spec.replace` set, a random stand-in at the LM's width."""
    spec.check_init()
    if spec.replace is None:
        return spec.load_lm()
    if spec.init == "pretrained":
        raise UserError(f"model.backbone.replace={spec.replace} builds a random stand-in for the LM; set "
                        "model.backbone.init=random (ablation=no_lm and ablation=lm_to_attention do)")
    return build_stand_in(spec.replace, spec.dims(spec.random_config()), spec.seed, spec.family.title, spec.dropout)
