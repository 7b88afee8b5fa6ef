"""Layers: one small class per file, each reading like a page of the course."""

# every layer module, imported so that each registers its layers by decorator
from dlrun.nn.layers import activation, conv2d, dense, dropout, flatten, lstm, pool2d, rnn  # noqa: F401, E402
