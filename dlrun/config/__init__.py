"""Config files: settings base, registry, loading, overrides, resolution, schema."""
