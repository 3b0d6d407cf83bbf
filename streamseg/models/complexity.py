"""How big a model is: parameters, and multiply-accumulates of one forward pass.

MACs are counted with forward hooks on the layers that do the arithmetic (convolutions, transposed
convolutions, linear layers); batch norm, activations, pooling and resizing are left out because
they are folded away or negligible next to the convolutions. One GMAC is about two GFLOPs.
"""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, input_size: tuple[int, int]) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on a single (1, 3, H, W) image."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * kernel

    def transposed_conv_hook(module: nn.ConvTranspose2d, inputs, output: torch.Tensor) -> None:
        nonlocal total
        # Every input value is spread over kernel x (out_channels / groups) outputs.
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += inputs[0].numel() * (module.out_channels // module.groups) * kernel

    def linear_hook(module: nn.Linear, inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    hooks = {nn.Conv2d: conv_hook, nn.ConvTranspose2d: transposed_conv_hook, nn.Linear: linear_hook}
    handles = [
        module.register_forward_hook(hooks[type(module)]) for module in model.modules() if type(module) in hooks
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.rand(1, 3, *input_size))
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
