"""Metric kernels.

    argmax_hits(o, labels) = #{i : argmax_k o[i, k] == labels[i]}     o: (M, K), labels: (M,)

The first maximum wins ties, as in ``np.argmax``.
"""

from __future__ import annotations

from dlrun.kernels._jit import kernel


@kernel
def argmax_hits(o, labels):
    hits = 0
    for i in range(o.shape[0]):
        best = 0
        for k in range(1, o.shape[1]):
            if o[i, k] > o[i, best]:
                best = k
        if best == labels[i]:
            hits += 1
    return hits
