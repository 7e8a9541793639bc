"""Backbones: ``Factory(input_shape, out_dim=1024, **options) -> nn.Module`` mapping ``(n, *input_shape)`` to
``(n, out_dim)``. ``resnet`` (the paper's), ``timm`` (any timm model), ``mlp``, and the fitted ``baselines``."""
