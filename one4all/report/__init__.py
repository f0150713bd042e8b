"""`one4all report SWEEP_DIR`: the runs below a folder as the papers' tables (Markdown, CSV, chart).

runs.py reads each run's metrics.json and config.yaml; tables.py groups them (rows dataset, columns
horizon + average, mean ± std over seeds, trainable parameters and artifact size); published.py
holds the papers' numbers (published.csv, each cell with its source) for `--published`; chart.py
draws MSE against horizon.
"""
