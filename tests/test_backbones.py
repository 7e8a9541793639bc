"""Backbones: output shapes on every encoder's shape, training, the paper's layout, fitted baselines."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xrdzoo import registry
from xrdzoo.backbones.baselines import MeanPattern, NearestNeighbours
from xrdzoo.backbones.resnet import STAGES, ResBlock
from xrdzoo.encoders import FractionEncoder, MagpieEncoder, OneHotEncoder

SHAPES = [OneHotEncoder().shape, OneHotEncoder(max_count=24, elements="paper").shape, FractionEncoder().shape,
          MagpieEncoder().shape]
SMALL = {"resnet10": {"width": 8}, "resnet15": {"width": 8}, "resnet20": {"width": 8}, "resnet25": {"width": 8},
         "mlp": {"hidden": [32]}, "timm/resnet18": {}}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny batches run fastest on one thread (and on a busy 2-core machine, 100x faster than on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_output_shape(name, shape):
    torch.manual_seed(0)
    net = registry.create("backbones", name, shape, out_dim=1024, **SMALL[name])
    for mode in (net.train, net.eval):
        mode()
        assert net(torch.rand(3, *shape)).shape == (3, 1024)


@pytest.mark.parametrize("depth", list(STAGES))
def test_resnet_layout(depth):
    """The depth counts residual blocks, six of them Res block1s; an 84x10 input flattens to the paper's 1,408."""
    net = registry.create("backbones", f"resnet{depth}", (1, 10, 84))
    blocks = [m for m in net.modules() if isinstance(m, ResBlock)]
    assert len(blocks) == depth and sum(not isinstance(b.shortcut, nn.Identity) for b in blocks) == 6
    dense = [m for m in net.encoder if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(11 * 2 * 64, 128)]


def test_resnet_rejects_other_lengths():
    with pytest.raises(ValueError, match="1024 points"):
        registry.create("backbones", "resnet20", (94,), out_dim=512)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_resnet20_learns_a_tiny_batch(batchnorm):
    torch.manual_seed(0)
    encoder = OneHotEncoder(max_count=4)
    x = encoder.encode(["BaTiO3", "SrTiO3", "NaCl", "MgAl2O4"])
    y = torch.rand(4, 1024)
    net = registry.create("backbones", "resnet20", encoder.shape, width=8, dropout=0.0,
                           batchnorm=batchnorm)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = nn.functional.mse_loss(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_timm_refuses_pretrained_and_unknown_variants():
    with pytest.raises(ValueError, match="cannot be fetched"):
        registry.create("backbones", "timm/resnet18", (94,), pretrained=True)
    with pytest.raises(ValueError, match="no model 'resnet9999'"):
        registry.create("backbones", "timm/resnet9999", (94,))


def toy_data():
    inputs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return inputs, targets


def test_mean_pattern_fits_the_mean():
    inputs, targets = toy_data()
    model = MeanPattern((2,), out_dim=3)
    model.fit(inputs, targets)
    assert torch.allclose(model(torch.rand(2, 2)), torch.full((2, 3), 1 / 3))
    assert not any(p.requires_grad for p in model.parameters())


def test_knn_copies_and_blends_neighbours():
    inputs, targets = toy_data()
    nearest = NearestNeighbours((2,), out_dim=3)
    nearest.fit(inputs, targets)
    assert torch.equal(nearest(inputs), targets)
    assert torch.equal(nearest(torch.tensor([[0.9, 0.2], [0.1, 2.0]])), targets[[1, 2]])
    blend = NearestNeighbours((2,), out_dim=3, k=2)
    blend.fit(inputs, targets)
    assert torch.allclose(blend(torch.tensor([[0.2, 0.0]])), torch.tensor([[0.5, 0.5, 0.0]]))
    weighted = NearestNeighbours((2,), out_dim=3, k=2, weighted=True)
    weighted.fit(inputs, targets)  # distances 0.25 and 0.75: weights 3/4 and 1/4
    assert torch.allclose(weighted(torch.tensor([[0.25, 0.0]])), torch.tensor([[0.75, 0.25, 0.0]]), atol=1e-6)


def test_knn_chunks_give_the_same_answer():
    torch.manual_seed(0)
    inputs, targets = torch.rand(50, 6), torch.rand(50, 4)
    whole, chunked = NearestNeighbours((6,), 4, k=3), NearestNeighbours((6,), 4, k=3, chunk_elements=100)
    for model in (whole, chunked):
        model.fit(inputs, targets)
    queries = torch.rand(30, 6)
    assert torch.allclose(whole(queries), chunked(queries))


def test_unfitted_knn_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        NearestNeighbours((2,), 3)(torch.rand(1, 2))


@pytest.mark.parametrize("make", [lambda: MeanPattern((2,), 3), lambda: NearestNeighbours((2,), 3, k=2)])
def test_fitted_state_survives_a_state_dict_round_trip(make):
    inputs, targets = toy_data()
    fitted = make()
    fitted.fit(inputs, targets)
    fresh = make()  # knn's buffers are empty here: they must take the saved size
    fresh.load_state_dict(fitted.state_dict())
    queries = torch.rand(5, 2)
    assert torch.equal(fresh(queries), fitted(queries))


def test_fit_checks_its_arguments():
    with pytest.raises(ValueError, match="as many inputs as targets"):
        NearestNeighbours((2,), 3).fit(torch.rand(3, 2), torch.rand(2, 3))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        MeanPattern((2,), 3).fit(torch.rand(3, 2), torch.rand(3, 4))
