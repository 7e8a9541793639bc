"""Backbones: ``Factory(input_shape, out_dim=N_POINTS, **options) -> nn.Module`` mapping ``(n, *input_shape)`` to
``(n, out_dim)``. ``resnet`` (the paper's), ``timm`` (any timm model), ``mlp``, and the fitted ``baselines``."""
