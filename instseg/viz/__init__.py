"""Visualisation: instance overlays for inspecting data sets and predictions."""

from instseg.viz.overlay import draw_instances, instance_colors

__all__ = ["draw_instances", "instance_colors"]
