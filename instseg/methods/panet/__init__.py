"""PANet (Liu et al., 2018) for instance segmentation; importing this package registers its builders."""

from instseg.methods.panet.builders import build_panet, panet_resnet18_fpn, panet_resnet50_fpn
from instseg.methods.panet.model import PANet

__all__ = ["PANet", "build_panet", "panet_resnet18_fpn", "panet_resnet50_fpn"]
