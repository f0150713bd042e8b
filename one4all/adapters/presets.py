"""Named adapter presets: which parts of the network get LoRA and which train in full.

Part names are the network's own vocabulary (`One4All.PARTS`): `wpe`, `head`,
`patch_embedding`, `layernorms`, and the GPT-2 block projections `c_attn`, `attn_proj`,
`mlp_fc`, `mlp_proj`. To add a preset, add an entry here and a file in configs/adapter/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """LoRA targets and fully trainable parts, plus a one-line provenance."""

    lora: tuple[str, ...]
    full: tuple[str, ...]
    about: str


PRESETS: dict[str, Preset] = {
    # Authors' code: get_peft_model over the whole model, so only the LoRA matrices train.
    "reference": Preset(("wpe", "head"), (), "One-for-All authors' code: rsLoRA on wpe + head only"),
    # Authors' short-term (M4) code: get_peft_model on GPT-2 alone (LoRA reaches wpe only), then wpe and
    # every LayerNorm unfrozen; the token embedding, time extension and head outside GPT-2 train too.
    "reference_short_term": Preset(("wpe",), ("wpe", "layernorms", "patch_embedding", "head"),
                                   "One-for-All authors' short-term code: rsLoRA on wpe + GPT4TS's trainable parts"),
    # Paper text: the patch embedding is "learnable" (the code freezes it).
    "paper": Preset(("wpe", "head"), ("patch_embedding",), "One-for-All paper text: + trainable patch embedding"),
    # GPT4TS: positional embedding, LayerNorms, patch embedding and head trained in full; no LoRA.
    "gpt4ts": Preset((), ("layernorms", "wpe", "patch_embedding", "head"), "GPT4TS (One Fits All)"),
    # Ablation: a linear probe on frozen GPT-2 features.
    "linear_probe": Preset((), ("head",), "only the head trains"),
}
