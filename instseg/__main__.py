"""``python -m instseg`` (also what ``torchrun -m instseg train ...`` runs)."""

from instseg.cli.main import app

app()
