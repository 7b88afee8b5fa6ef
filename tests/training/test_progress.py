from dlrun.training.progress import Progress, duration


def test_short_epochs_are_shown_in_milliseconds():
    assert duration(0.0026) == "2.6ms"
    assert duration(0.0999) == "99.9ms"
    assert duration(0.1) == "0.10s"
    assert duration(12.345) == "12.35s"


def test_epoch_line_names_every_metric_it_has():
    p = Progress("silent")
    p.epochs = 60
    line = p.format({"epoch": 3, "loss": 0.5, "accuracy": 0.875, "lr": 0.05, "seconds": 0.003})
    assert line == "epoch 3/60  loss 0.5  accuracy 0.875  lr 0.05  3.0ms"
