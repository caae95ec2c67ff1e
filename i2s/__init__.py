"""i2s: helpers for the Image2song and MR-CCA reproduction notebooks."""
__version__ = "0.1.0"
