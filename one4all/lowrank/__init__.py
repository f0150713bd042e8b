"""Low-rank adaptation methods beyond fixed-rank LoRA: GeLoRA (data-derived ranks), WeLore (SVD compression)."""
