"""Multirun on Hydra's sweepers and launchers: `one4all train -m ...` and the jobs of `one4all compare`.

launch.py composes the sweep, checks every job's config before anything runs and hands the jobs to
the configured launcher; job.py is the task function each job runs (optionally in its own process).
"""
