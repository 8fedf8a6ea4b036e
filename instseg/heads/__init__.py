"""Dense prediction heads shared by several methods (a method's own head lives in its folder)."""

from instseg.heads.fcos import FCOSHead, FCOSLoss, FCOSSelector

__all__ = ["FCOSHead", "FCOSLoss", "FCOSSelector"]
