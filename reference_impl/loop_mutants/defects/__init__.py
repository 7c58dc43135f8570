"""One module per loop mutant (see ``reference_impl.loop_mutants``)."""
