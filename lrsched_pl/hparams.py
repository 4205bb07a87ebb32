"""What a run writes once to TensorBoard besides its curves: the HPARAMS entry and the custom-scalars layout."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

# TensorBoard's custom_scalars dashboard: one chart per quantity, every run of a sweep overlaid in it. Tags are
# regular expressions; `lr-` tags are LearningRateMonitor's (`lr-SGD`, `lr-Adam/pg1`), without its momentum tags.
LAYOUT_CATEGORY = "lrsched_pl"
LAYOUT = {
    "learning rate": r"^lr-((?!momentum).)*$",
    "validation loss": r"^val/loss$",
    "validation accuracy": r"^val/acc$",
    "training loss": r"^train/loss$",
}


@rank_zero_only
def log_hparams(logger: Any, params: dict[str, Any], metrics: list[str]) -> None:
    """Writes the HPARAMS summaries, whose metric columns show the last value of each tag in ``metrics``.

    ``TensorBoardLogger.log_hyperparams(params, metrics)`` would also write each metric as a scalar at step 0;
    writing the three hparams summaries directly keeps the curves clean. Other loggers get
    ``log_hyperparams(params)``.
    """
    if not isinstance(logger, TensorBoardLogger):
        if logger is not None:
            logger.log_hyperparams(params)
        return
    logger.log_hyperparams(params)  # also records them in hparams.yaml
    writer = logger.experiment._get_file_writer()
    for summary in hparams(params, {name: float("nan") for name in metrics}):
        writer.add_summary(summary)


@rank_zero_only
def log_layout(logger: Any) -> None:
    """Writes :data:`LAYOUT` for TensorBoard's custom_scalars dashboard (TensorBoard loggers only).

    Every run writes the same layout; TensorBoard merges the runs' layouts and drops the duplicate charts, so a
    sweep shows one chart per quantity with all its runs in it.
    """
    if isinstance(logger, TensorBoardLogger):
        charts = {title: ["Multiline", [regex]] for title, regex in LAYOUT.items()}
        logger.experiment.add_custom_scalars({LAYOUT_CATEGORY: charts})
