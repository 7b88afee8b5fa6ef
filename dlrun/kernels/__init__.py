"""Pure jitted kernels: arrays and scalars in, preallocated outputs in, nothing else."""
