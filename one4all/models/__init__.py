"""Networks: the One-for-All GPT-2 model and baselines, all on one contract (models.contract)."""
