"""Implementation package; public names are re-exported by the namespaces."""
