"""A run of dense layers, forward and backward, each pass in one kernel call.

For every layer l of the run (``layout[l] = (w, b, n_in, n_out, code)``: where its W
(n_in, n_out) and b (n_out,) start in the flat parameter buffer, b = -1 for none,
and its activation code; ``slopes[l]`` its leaky_relu slope; ``libs[l]`` the BLAS of
its three products, in the order below, for this M), with a_0 = x (M, n_0):

    forward     a_{l+1} = f_l(a_l W_l + b_l)                        gemm, bias_act_forward
    backward    dz_l    = da_{l+1} * f_l'(a_{l+1}),  db_l = sum_rows dz_l     act_backward_bias
                dW_l    = a_l^T dz_l                                 gemm_tn
                da_l    = dz_l W_l^T   (for l = 0 only if dC/dx is asked)   gemm_nt

The same BLAS routines (chosen per shape: ``blas.lib_for_shape``) and the same elementwise
kernels as ``layers.dense`` layer by layer, so the results are the same to the bit (but
for a single row, where ``np.dot`` takes a matrix-vector routine: the same sums in
another order); only the Python between
the layers is gone (for the 784-256-128-10 MLP, about a tenth of a training batch).
The outputs of all layers lie one after another in one flat buffer ``acts`` (M * n_out
values each).
"""

from __future__ import annotations

import numpy as np

from dlrun.kernels._jit import inline, kernel
from dlrun.kernels.activations import act_backward_bias, bias_act_forward
from dlrun.kernels.blas import gemm, gemm_nt, gemm_tn


@inline
def _layer(layout, l):
    """Layer l's (w, b, n_in, n_out, code)."""
    row = layout[l]
    return row[0], row[1], row[2], row[3], row[4]


@inline
def _view(buf, start, rows, cols):
    """buf[start : start + rows * cols] as a (rows, cols) matrix."""
    return buf[start : start + rows * cols].reshape((rows, cols))


@kernel
def stack_forward(x, params, zeros, layout, slopes, libs, acts):
    """Fill ``acts`` with every layer's output; x: (M, n_0), C-contiguous."""
    m = x.shape[0]
    a = x
    pos = 0
    for l in range(layout.shape[0]):
        w0, b0, n_in, n_out, code = _layer(layout, l)
        y = _view(acts, pos, m, n_out)
        gemm(a, _view(params, w0, n_in, n_out), y, libs[l, 0])
        b = params[b0 : b0 + n_out] if b0 >= 0 else zeros[:n_out]
        bias_act_forward(y, b, code, slopes[l], y)
        a = y
        pos += m * n_out


@kernel
def stack_backward(x, params, grads, scratch, layout, slopes, libs, acts, dy, dx):
    """Fill every layer's dW and db in ``grads`` from dy = dC/d(last output) (M, n_L), and
    dC/dx into ``dx`` when it has M rows (pass a (0, n_0) array to skip that product).
    ``scratch``: at least max n_out values (the bias gradient of a layer without bias)."""
    m = x.shape[0]
    n_layers = layout.shape[0]
    starts = np.zeros(n_layers + 1, np.int64)
    for l in range(n_layers):
        starts[l + 1] = starts[l] + m * layout[l, 3]
    work = np.empty(2 * starts[n_layers], acts.dtype)  # dz_l, then da_l, of every layer
    da = dy
    for l in range(n_layers - 1, -1, -1):
        w0, b0, n_in, n_out, code = _layer(layout, l)
        dz = _view(work, starts[l], m, n_out)
        db = grads[b0 : b0 + n_out] if b0 >= 0 else scratch[:n_out]
        act_backward_bias(da, _view(acts, starts[l], m, n_out), code, slopes[l], dz, db)
        a = _view(acts, starts[l - 1], m, n_in) if l > 0 else x
        gemm_tn(a, dz, _view(grads, w0, n_in, n_out), libs[l, 1])
        if l > 0:
            da = _view(work, starts[n_layers] + starts[l - 1], m, n_in)
            gemm_nt(dz, _view(params, w0, n_in, n_out), da, libs[l, 2])
        elif dx.shape[0] == m:
            gemm_nt(dz, _view(params, w0, n_in, n_out), dx, libs[l, 2])
