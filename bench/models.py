"""Three real networks, each defined once in PyTorch and once as a JAX port.

  resnet18      ResNet-18-style: BasicBlocks (conv-BN-ReLU-conv-BN + shortcut),
                stride-2 downsampling with 1x1 conv + BN shortcuts, global
                average pooling, a linear classifier
  mobilenet_v2  MobileNetV2-style: inverted residuals (1x1 expand, 3x3
                depthwise, 1x1 project, each with BN; ReLU6), a 1x1 head,
                global average pooling, a linear classifier
  unet          a small U-Net: conv-BN-ReLU pairs, max pooling, one
                transposed-convolution and one bilinear-interpolation
                upsampling, skip concatenation, a 1x1 output conv

The torch definitions are plain ``torch.nn`` (no torchvision). The JAX port of
each network is one function ``forward(ops, params, buffers, x, train)`` written
against an *op set*: :data:`JAXGRAD` (jaxgrad's ops, explicit VJPs) or
:data:`LAX` (the same ops written here on plain ``lax``/``jax.nn``, whose
gradients are JAX autodiff — the baseline the bench compares with). Both take
torch's arguments, so the port reads like the torch module. Block outputs are named after their
torch submodules with ``jaxgrad.tap`` (the identity outside
``jaxgrad.testing.check_model_parity``), so a parity check localises a
difference to a block.

Parameters move from torch with :func:`jaxgrad.interop.params_from_torch`: a
flat dict keyed by the ``state_dict`` names; :func:`split` separates the
trainable parameters from the buffers (BatchNorm running statistics and
``num_batches_tracked``). In train mode ``forward`` returns the updated
buffers alongside the output, equal to the torch module's buffers after the
same call.

Width and depth are arguments (``width``, ``classes``), so the tests run
narrow networks in float64 and the bench runs realistic ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxgrad

NETWORKS = ("resnet18", "mobilenet_v2", "unet")


# --------------------------------------------------------------------------
# The torch definitions (plain torch.nn). Imported lazily: the bench runs
# without torch (--no-torch).


def torch_network(name: str, **config):
    """The torch module of network ``name`` (see :data:`NETWORKS`)."""
    from torch import nn

    def conv_bn(cin, cout, k, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, *([act()] if act else []))

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(out + shortcut)

    class ResNet18(nn.Module):
        def __init__(self, width=16, classes=10):
            super().__init__()
            w = width
            self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(w)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            chans = [w, 2 * w, 4 * w, 8 * w]
            cin = w
            for i, cout in enumerate(chans):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(
                    BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
                cin = cout
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(self.avgpool(x).flatten(1))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            self.use_residual = stride == 1 and cin == cout
            layers = []
            if expand != 1:
                layers.append(conv_bn(cin, hidden, 1, act=nn.ReLU6))
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                       nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            out = self.conv(x)
            return x + out if self.use_residual else out

    class MobileNetV2(nn.Module):
        def __init__(self, width=16, classes=10):
            super().__init__()
            blocks = [conv_bn(3, width, 3, 2, act=nn.ReLU6)]
            cin = width
            for expand, cout, repeats, stride in _mobilenet_stages(width):
                for r in range(repeats):
                    blocks.append(InvertedResidual(cin, cout, stride if r == 0 else 1,
                                                   expand))
                    cin = cout
            blocks.append(conv_bn(cin, 4 * cin, 1, act=nn.ReLU6))
            self.features = nn.Sequential(*blocks)
            self.classifier = nn.Linear(4 * cin, classes)

        def forward(self, x):
            x = self.features(x)
            return self.classifier(x.mean((2, 3)))

    class DoubleConv(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)

        def forward(self, x):
            x = torch_relu(self.bn1(self.conv1(x)))
            return torch_relu(self.bn2(self.conv2(x)))

    class UNet(nn.Module):
        def __init__(self, width=16, classes=3):
            super().__init__()
            w = width
            self.enc1 = DoubleConv(3, w)
            self.enc2 = DoubleConv(w, 2 * w)
            self.bottleneck = DoubleConv(2 * w, 4 * w)
            self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, 2)
            self.dec2 = DoubleConv(4 * w, 2 * w)
            self.reduce1 = nn.Conv2d(2 * w, w, 1)
            self.dec1 = DoubleConv(2 * w, w)
            self.out = nn.Conv2d(w, classes, 1)

        def forward(self, x):
            import torch.nn.functional as F
            e1 = self.enc1(x)
            e2 = self.enc2(F.max_pool2d(e1, 2))
            b = self.bottleneck(F.max_pool2d(e2, 2))
            d2 = self.dec2(torch_cat([self.up2(b), e2]))
            up1 = F.interpolate(self.reduce1(d2), scale_factor=2, mode="bilinear",
                                align_corners=False)
            d1 = self.dec1(torch_cat([up1, e1]))
            return self.out(d1)

    import torch
    torch_relu, torch_cat = torch.relu, (lambda xs: torch.cat(xs, 1))
    classes = {"resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "unet": UNet}
    return classes[name](**config)


def _mobilenet_stages(width: int) -> list[tuple[int, int, int, int]]:
    """(expand ratio, out channels, repeats, first stride) per stage: MobileNetV2's
    table with its channel counts scaled to ``width`` (32 in the original) and
    the repeats shortened."""
    scale = width / 32
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1)]
    return [(t, max(8, int(c * scale)), n, s) for t, c, n, s in table]


# --------------------------------------------------------------------------
# Op sets: jaxgrad's, and the same ops on plain lax (gradients by autodiff).


def _lax_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    y = lax.conv_general_dilated(
        x, w, pair(stride), [(p, p) for p in pair(padding)], rhs_dilation=pair(dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups)
    return y if b is None else y + b[:, None, None]


def _lax_conv_transpose2d(x, w, b=None, stride=1, padding=0):
    # torch's transposed convolution is the input gradient of conv2d: dilate
    # the input by the stride, pad by k - 1 - padding, correlate with the
    # spatially flipped kernel with in/out swapped.
    k = w.shape[2:]
    kernel = jnp.flip(w, (2, 3)).swapaxes(0, 1)
    y = lax.conv_general_dilated(
        x, kernel, (1, 1), [(kk - 1 - padding, kk - 1 - padding) for kk in k],
        lhs_dilation=(stride, stride), dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y if b is None else y + b[:, None, None]


def _lax_batch_norm(x, running_mean, running_var, weight, bias, training, momentum,
                    eps):
    axes = (0, 2, 3)
    shape = (1, -1, 1, 1)
    if training:
        mean, var = x.mean(axes), x.var(axes)
    else:
        mean, var = running_mean, running_var
    y = (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + eps)
    return y * weight.reshape(shape) + bias.reshape(shape)


def _lax_batch_norm_stats(x, running_mean, running_var, momentum):
    count = x.size // x.shape[1]
    mean = x.mean((0, 2, 3))
    unbiased = x.var((0, 2, 3)) * count / (count - 1)
    update = lambda old, new: (1 - momentum) * old + momentum * new
    return (update(running_mean, lax.stop_gradient(mean)),
            update(running_var, lax.stop_gradient(unbiased)))


def _lax_max_pool2d(x, kernel, stride=None, padding=0):
    stride = kernel if stride is None else stride
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, kernel, kernel),
                             (1, 1, stride, stride),
                             [(0, 0), (0, 0), (padding, padding), (padding, padding)])


def _lax_upsample_bilinear2x(x):
    n, c, h, w = x.shape
    return jax.image.resize(x, (n, c, 2 * h, 2 * w), "bilinear", antialias=False)


def _lax_cross_entropy(logits, target):
    logp = jax.nn.log_softmax(logits, axis=1)
    picked = jnp.take_along_axis(logp, jnp.expand_dims(target, 1), axis=1)
    return -picked.mean()


@dataclasses.dataclass(frozen=True)
class Ops:
    """The ops a port calls, with torch's arguments."""

    name: str
    conv2d: Callable
    conv_transpose2d: Callable
    batch_norm: Callable
    batch_norm_stats: Callable      # (x, running_mean, running_var, momentum) -> new
    relu: Callable
    relu6: Callable
    max_pool2d: Callable
    upsample_bilinear2x: Callable
    global_avg_pool: Callable       # (N, C, H, W) -> (N, C)
    linear: Callable
    cross_entropy: Callable


def _jaxgrad_ops() -> Ops:
    def stats(x, running_mean, running_var, momentum):
        new = jaxgrad.batch_norm_stats(x, running_mean, running_var, momentum=momentum)
        return new.running_mean, new.running_var

    return Ops(
        name="jaxgrad",
        conv2d=jaxgrad.conv2d, conv_transpose2d=jaxgrad.conv_transpose2d,
        batch_norm=jaxgrad.batch_norm, batch_norm_stats=stats,
        relu=jaxgrad.relu, relu6=jaxgrad.relu6,
        max_pool2d=lambda x, k, stride=None, padding=0: jaxgrad.max_pool2d(
            x, k, stride, padding),
        upsample_bilinear2x=lambda x: jaxgrad.interpolate(
            x, scale_factor=2, mode="bilinear", align_corners=False),
        global_avg_pool=lambda x: jaxgrad.adaptive_avg_pool2d(x, 1)[:, :, 0, 0],
        linear=jaxgrad.linear, cross_entropy=jaxgrad.cross_entropy)


LAX = Ops(
    name="lax",
    conv2d=_lax_conv2d, conv_transpose2d=_lax_conv_transpose2d,
    batch_norm=_lax_batch_norm, batch_norm_stats=_lax_batch_norm_stats,
    relu=jax.nn.relu, relu6=jax.nn.relu6, max_pool2d=_lax_max_pool2d,
    upsample_bilinear2x=_lax_upsample_bilinear2x,
    global_avg_pool=lambda x: x.mean((2, 3)),
    linear=lambda x, w, b=None: x @ w.T + (0 if b is None else b),
    cross_entropy=_lax_cross_entropy)


def op_set(name: str) -> Ops:
    """:data:`LAX` or jaxgrad's op set, by name ("lax" or "jaxgrad")."""
    return LAX if name == "lax" else _jaxgrad_ops()


# --------------------------------------------------------------------------
# The ports. ``p`` holds the trainable parameters, ``buffers`` the running
# statistics, both keyed by torch's names; ``state`` collects updated buffers.


class _Port:
    """One forward pass of a port: the op set, parameters and buffer updates."""

    def __init__(self, ops: Ops, params: dict, buffers: dict, train: bool,
                 momentum: float = 0.1, eps: float = 1e-5):
        self.ops, self.p, self.buffers, self.train = ops, params, buffers, train
        self.momentum, self.eps = momentum, eps
        self.updated: dict = {}

    def conv(self, name: str, x, stride=1, padding=0, groups=1):
        return self.ops.conv2d(x, self.p[f"{name}.weight"], self.p.get(f"{name}.bias"),
                               stride, padding, 1, groups)

    def bn(self, name: str, x):
        mean, var = (self.buffers[f"{name}.running_{s}"] for s in ("mean", "var"))
        y = self.ops.batch_norm(x, mean, var, self.p[f"{name}.weight"],
                                self.p[f"{name}.bias"], self.train, self.momentum,
                                self.eps)
        if self.train:
            new_mean, new_var = self.ops.batch_norm_stats(x, mean, var, self.momentum)
            count = self.buffers[f"{name}.num_batches_tracked"]
            self.updated.update({f"{name}.running_mean": new_mean,
                                 f"{name}.running_var": new_var,
                                 f"{name}.num_batches_tracked": count + 1})
        return y

    def conv_bn(self, name: str, x, stride=1, groups=1, act=None):
        k = self.p[f"{name}.0.weight"].shape[-1]
        y = self.bn(f"{name}.1", self.conv(f"{name}.0", x, stride, k // 2, groups))
        return y if act is None else act(y)

    def new_buffers(self) -> dict:
        return {**self.buffers, **self.updated}


def _resnet18(port: _Port, x):
    relu = port.ops.relu

    def block(name, x, stride):
        out = relu(port.bn(f"{name}.bn1", port.conv(f"{name}.conv1", x, stride, 1)))
        out = port.bn(f"{name}.bn2", port.conv(f"{name}.conv2", out, 1, 1))
        if f"{name}.downsample.0.weight" in port.p:
            x = port.bn(f"{name}.downsample.1",
                        port.conv(f"{name}.downsample.0", x, stride, 0))
        return jaxgrad.tap(relu(out + x), name)

    x = relu(port.bn("bn1", port.conv("conv1", x, 1, 1)))
    x = port.ops.max_pool2d(x, 3, 2, 1)
    for i in range(4):
        x = block(f"layer{i + 1}.0", x, 1 if i == 0 else 2)
        x = block(f"layer{i + 1}.1", x, 1)
    return port.ops.linear(port.ops.global_avg_pool(x), port.p["fc.weight"],
                           port.p["fc.bias"])


def _mobilenet_v2(port: _Port, x):
    relu6 = port.ops.relu6
    index = 0
    x = port.conv_bn(f"features.{index}", x, 2, act=relu6)
    cin = x.shape[1]
    width = cin
    for expand, cout, repeats, stride in _mobilenet_stages(width):
        for r in range(repeats):
            index += 1
            name, s = f"features.{index}.conv", stride if r == 0 else 1
            hidden, j, out = cin * expand, 0, x
            if expand != 1:
                out = port.conv_bn(f"{name}.0", out, act=relu6)
                j = 1
            out = port.conv_bn(f"{name}.{j}", out, s, groups=hidden, act=relu6)
            out = port.bn(f"{name}.{j + 2}", port.conv(f"{name}.{j + 1}", out))
            x = jaxgrad.tap(x + out if s == 1 and cin == cout else out,
                            f"features.{index}")
            cin = cout
    index += 1
    x = port.conv_bn(f"features.{index}", x, act=relu6)
    return port.ops.linear(port.ops.global_avg_pool(x), port.p["classifier.weight"],
                           port.p["classifier.bias"])


def _unet(port: _Port, x):
    relu = port.ops.relu

    def double(name, x):
        x = relu(port.bn(f"{name}.bn1", port.conv(f"{name}.conv1", x, 1, 1)))
        x = relu(port.bn(f"{name}.bn2", port.conv(f"{name}.conv2", x, 1, 1)))
        return jaxgrad.tap(x, name)

    pool = lambda x: port.ops.max_pool2d(x, 2)
    e1 = double("enc1", x)
    e2 = double("enc2", pool(e1))
    b = double("bottleneck", pool(e2))
    up2 = jaxgrad.tap(port.ops.conv_transpose2d(b, port.p["up2.weight"],
                                                port.p["up2.bias"], 2), "up2")
    d2 = double("dec2", jnp.concatenate([up2, e2], axis=1))
    up1 = port.ops.upsample_bilinear2x(port.conv("reduce1", d2))
    d1 = double("dec1", jnp.concatenate([up1, e1], axis=1))
    return port.conv("out", d1)


_PORTS = {"resnet18": _resnet18, "mobilenet_v2": _mobilenet_v2, "unet": _unet}


def forward(name: str, ops: Ops, params: dict, buffers: dict, x, train: bool):
    """Network ``name``'s output, and its buffers after the call.

    Args:
      name: one of :data:`NETWORKS`.
      ops: the op set (:data:`LAX` or ``op_set("jaxgrad")``).
      params: trainable parameters keyed by torch's names.
      buffers: running statistics keyed by torch's names.
      x: the input batch, (N, 3, H, W).
      train: batch statistics and buffer updates (torch's ``module.train()``)
        or running statistics (``module.eval()``).

    Returns:
      ``(output, new_buffers)``; in eval mode ``new_buffers`` is ``buffers``.
    """
    port = _Port(ops, params, buffers, train)
    return _PORTS[name](port, x), port.new_buffers()


def split(state: dict, module) -> tuple[dict, dict]:
    """(parameters, buffers): a flat ``params_from_torch`` dict split by whether
    each name is one of ``module``'s trainable parameters."""
    trainable = {name for name, _ in module.named_parameters()}
    return ({k: v for k, v in state.items() if k in trainable},
            {k: v for k, v in state.items() if k not in trainable})


def loss_fn(name: str, ops: Ops):
    """``loss(params, buffers, x, target) -> (loss, new_buffers)`` in train mode:
    cross-entropy of the logits (per pixel for the U-Net)."""
    def loss(params, buffers, x, target):
        logits, new_buffers = forward(name, ops, params, buffers, x, True)
        return ops.cross_entropy(logits, target), new_buffers
    return loss


def sgd_step(name: str, ops: Ops, lr: float):
    """One training step: forward, loss, backward, SGD update.

    ``step(params, buffers, x, target) -> (loss, params, buffers)``.
    """
    loss = loss_fn(name, ops)

    def step(params, buffers, x, target):
        (value, new_buffers), grads = jax.value_and_grad(loss, has_aux=True)(
            params, buffers, x, target)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return value, params, new_buffers
    return step


def example_batch(name: str, batch: int, size: int, classes: int, seed: int,
                  dtype=np.float32):
    """(x, target) as NumPy arrays: an image batch and class targets (per pixel
    for the U-Net)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, size, size)).astype(dtype)
    shape = (batch, size, size) if name == "unet" else (batch,)
    return x, rng.integers(0, classes, shape)


__all__ = ["NETWORKS", "LAX", "Ops", "op_set", "torch_network", "forward", "split",
           "loss_fn", "sgd_step", "example_batch"]
