"""Bridges between instseg's ``Instances`` and the data types of other computer-vision tools (optional extras)."""
