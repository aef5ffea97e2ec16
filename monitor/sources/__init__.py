"""Where trial records come from: one module per kind of input."""
