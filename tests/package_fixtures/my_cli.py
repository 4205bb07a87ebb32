"""A user's LightningCLI: lrsched_pl's callback and schedules come in as typed arguments."""

from lightning.pytorch.cli import LightningCLI

from my_pkg.parts import RandomData, Regressor

if __name__ == "__main__":
    LightningCLI(Regressor, RandomData)
