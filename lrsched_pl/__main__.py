"""``python -m lrsched_pl``: the same as ``lrsched-train`` and the repository's ``train.py``."""

from lrsched_pl.app import main

if __name__ == "__main__":
    main()
