"""The names GPT-2's spec had before backbones became a family (models.backbones): saved models'
manifests name `one4all.models.backbone.BackboneSpec`, so it stays importable here."""

from __future__ import annotations

from one4all.models.backbones import load_backbone
from one4all.models.backbones.base import Backbone, seeded
from one4all.models.backbones.gpt2 import GPT2Spec as BackboneSpec

__all__ = ["Backbone", "BackboneSpec", "load_backbone", "seeded"]
