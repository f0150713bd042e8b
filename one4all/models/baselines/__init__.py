"""Baselines on the One-for-All network contract (one4all.contract), written from their papers.

- `dlinear.DLinear`: Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023.
- `patchtst.PatchTST`: Nie et al., "A Time Series is Worth 64 Words", ICLR 2023.
- `timesnet.TimesNet`: Wu et al., "TimesNet: Temporal 2D-Variation Modeling", ICLR 2023.

Each produces every output kind of the contract (forecast, reconstruct, classify) with the task
heads of Time-Series-Library's implementation of that model, so every task accepts
`model=dlinear|patchtst|timesnet`. Every parameter of a baseline trains, so its artifact is all
of its weights.
"""
