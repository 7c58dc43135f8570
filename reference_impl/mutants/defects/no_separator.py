"""Splices correctly but its template drops the newline after an assistant's end-of-turn token."""
from reference_impl.server.service import Service

REPRODUCES = "D04, D18 (P03)"
FIXTURE = "tiny-chatml-drift-no-separator"


class Mutant(Service):
    """Nothing to override: the defect is the template it serves with."""
