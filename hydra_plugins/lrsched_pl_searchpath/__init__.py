"""lrsched_pl's Hydra plugin: the package's configs in every Hydra app's search path (:mod:`.searchpath`)."""
