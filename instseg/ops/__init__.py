"""Stateless typed tensor functions shared by every method (boxes, masks, NMS, matching)."""
