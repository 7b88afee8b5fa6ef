"""Neural networks: the network, its layers (course pages), fused steps, activations, losses."""
