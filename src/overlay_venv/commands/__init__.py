"""One module per command, each a thin click layer over a module of the same concern."""
