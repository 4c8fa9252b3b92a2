"""The fixture every guarantee test uses; the stack itself is in ``guarantee_stack``."""

from guarantee_stack import stack

__all__ = ["stack"]
