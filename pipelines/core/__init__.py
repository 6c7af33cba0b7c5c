"""Shared building blocks: Hub loading, outputs, video I/O, Lab colour, backbones, attention."""
