"""A user's own project: its model, data and an LR log, none of it from lrsched_pl (lightning-hydra-template style)."""
