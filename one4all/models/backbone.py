"""GPT-2's spec under the name it had before backbones became families (models.backbones): the short
import path for code that builds the default backbone."""

from __future__ import annotations

from one4all.models.backbones import load_backbone
from one4all.models.backbones.base import Backbone, seeded
from one4all.models.backbones.gpt2 import GPT2Spec as BackboneSpec

__all__ = ["Backbone", "BackboneSpec", "load_backbone", "seeded"]
