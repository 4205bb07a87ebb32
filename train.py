"""Train a Lightning model under a learning-rate schedule chosen from the Hydra config.

    python train.py schedule=step                      # one run, events under outputs/runs/
    python train.py -m schedule=constant,step,cosine   # a sweep, one TensorBoard run per job
    python train.py --cfg job                          # print the composed config

The same command as ``lrsched-train`` and ``python -m lrsched_pl`` (:mod:`lrsched_pl.app`), with the same configs.
"""

from lrsched_pl.app import main

if __name__ == "__main__":
    main()
