"""Data specs built by Hydra from `configs/data/*.yaml`: where a dataset lives, how it is split and
scaled (on training rows only), and how its batches are fed."""
