"""What a run writes once to TensorBoard besides its curves: the HPARAMS entry and the custom-scalars layout."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

# TensorBoard's custom_scalars dashboard: one chart per quantity, every run of a sweep overlaid in it. Tags are
# regular expressions; `lr-` tags are LearningRateMonitor's (`lr-SGD`, `lr-Adam/pg1`), whose `-momentum` and
# `-weight_decay` tags (logged when those are scheduled) get charts of their own in the runs that log them, as
# `d*lr-`, an LR-free optimizer's step size (optim_log.py), does.
LAYOUT_CATEGORY = "lrsched_pl"
LAYOUT = {
    "learning rate": r"^lr-((?!-momentum$|-weight_decay$).)*$",
    "validation loss": r"^val/loss$",
    "validation accuracy": r"^val/acc$",
    "training loss": r"^train/loss$",
}
# Charts of runs that log these (``charts_for``): what is scheduled beside the LR, an LR-free optimizer's step size.
OPTIONAL = {
    "weight decay": r"^lr-.*-weight_decay$",
    "momentum": r"^lr-.*-momentum$",
    "step size d*lr (LR-free optimizers)": r"^d\*lr-.*$",
}


def charts_for(callbacks: list[Any], optimizer_target: str) -> list[str]:
    """The :data:`OPTIONAL` charts a run with these callbacks and optimizer logs curves for."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    from lrsched_pl.callback import ScheduleCallback
    from lrsched_pl.values import cycles_momentum

    keys: set[str] = set()
    for callback in callbacks:
        if isinstance(callback, ScheduleCallback):
            keys |= {v.key for v in callback.values} | ({"momentum"} if cycles_momentum(callback.schedule) else set())
        if isinstance(callback, LearningRateMonitor):
            keys |= {k for k, on in (("weight_decay", callback.log_weight_decay), ("momentum", callback.log_momentum)) if on}
    charts = [title for title, key in (("weight decay", "weight_decay"), ("momentum", "momentum")) if key in keys]
    if optimizer_target.startswith(("prodigyopt.", "dadaptation.")):
        charts.append("step size d*lr (LR-free optimizers)")
    return charts


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
def log_layout(logger: Any, extra: list[str] = ()) -> None:
    """Writes :data:`LAYOUT` (and the ``extra`` charts of :data:`OPTIONAL`) for TensorBoard's custom_scalars
    dashboard (TensorBoard loggers only).

    Every run writes the same layout; TensorBoard merges the runs' layouts and drops the duplicate charts, so a
    sweep shows one chart per quantity with all its runs in it.
    """
    if isinstance(logger, TensorBoardLogger):
        layout = {**LAYOUT, **{title: OPTIONAL[title] for title in extra}}
        charts = {title: ["Multiline", [regex]] for title, regex in layout.items()}
        logger.experiment.add_custom_scalars({LAYOUT_CATEGORY: charts})
