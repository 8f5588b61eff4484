"""The benchmark cases: named convolution problems from well-known networks.

A case is an input shape and a stack of layers (one layer for every case but
the WaveNet stack), each a convolution or a transposed convolution with
PyTorch's arguments and weight layout:

  conv            input (N, C_in, *I), weight (C_out, C_in/G, *K)
  conv_transpose  input (N, C_in, *I), weight (C_in, C_out/G, *K)

No layer has a bias. Every case is timed on the gradient with respect to its
input and every weight. Shapes are the same in both suites; ``quick`` is a
subset of ``full`` chosen to cover each kind of kernel once.
"""

from __future__ import annotations

import dataclasses
import math

from jaxgrad._conv._spec import conv_output_size, conv_transpose_output_size

from . import _flops

SUITES = ("quick", "full")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One convolution with torch's arguments (per-dim tuples, symmetric padding).

    Attributes:
      op: ``"conv"`` or ``"conv_transpose"``.
      weight: the weight shape in torch's layout for ``op`` (see module doc).
      stride, padding, dilation: one int per spatial dim.
      groups: channel groups.
      output_padding: per spatial dim; transposed convolutions only.
    """

    op: str
    weight: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    output_padding: tuple[int, ...] | None = None

    @property
    def ndim(self) -> int:
        return len(self.weight) - 2

    @property
    def kernel(self) -> tuple[int, ...]:
        return self.weight[2:]

    @property
    def out_channels(self) -> int:
        if self.op == "conv":
            return self.weight[0]
        return self.weight[1] * self.groups

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(N, C_out, *O) for an input of shape (N, C_in, *I)."""
        batch, _, *spatial = input_shape
        if self.op == "conv":
            out = [conv_output_size(i, k, s, (p, p), d) for i, k, s, p, d in
                   zip(spatial, self.kernel, self.stride, self.padding,
                       self.dilation)]
        else:
            out = [conv_transpose_output_size(i, k, s, p, a, d)
                   for i, k, s, p, a, d in
                   zip(spatial, self.kernel, self.stride, self.padding,
                       self.output_padding, self.dilation)]
        return (batch, self.out_channels, *out)

    def longest_sum(self, input_shape: tuple[int, ...]) -> int:
        """The most terms any one element sums, in the forward or a gradient.

        Read the layer as a convolution from A channels to B channels (a
        transposed convolution is the input gradient of the convolution from
        its output back to its input). Its forward sums (A/G)·ΠK terms; its
        input gradient (B/G)·Π(taps of a kernel row that reach one input
        position, at most ceil(K·gcd(s, d)/s)); its weight gradient N·ΠO over
        the convolution's output positions.
        """
        batch, in_channels, *spatial = input_shape
        out_spatial = self.output_shape(input_shape)[2:]
        a, b, conv_out = in_channels, self.out_channels, out_spatial
        if self.op == "conv_transpose":
            a, b, conv_out = self.out_channels, in_channels, spatial
        taps = math.prod(min(k, -(-k * math.gcd(s, d) // s)) for k, s, d in
                         zip(self.kernel, self.stride, self.dilation))
        return max(a // self.groups * math.prod(self.kernel),
                   b // self.groups * taps, batch * math.prod(conv_out))

    def flops(self, input_shape: tuple[int, ...]) -> int:
        """Forward FLOPs for an input of shape (N, C_in, *I) (see ``_flops``)."""
        batch, in_channels, *spatial = input_shape
        if self.op == "conv":
            return _flops.conv_flops(batch, in_channels, self.out_channels,
                                     self.groups, self.kernel,
                                     self.output_shape(input_shape)[2:])
        return _flops.conv_transpose_flops(batch, in_channels, self.out_channels,
                                           self.groups, self.kernel, spatial)


@dataclasses.dataclass(frozen=True)
class Case:
    """A named benchmark problem.

    Attributes:
      name: a command-line friendly identifier (``--cases NAME``).
      description: what it is and which network it comes from.
      input: the input shape (N, C_in, *spatial).
      layers: the layers applied in order.
      quick: whether the case is part of the ``quick`` suite.
    """

    name: str
    description: str
    input: tuple[int, ...]
    layers: tuple[Layer, ...]
    quick: bool = False

    def shapes(self) -> list[tuple[int, ...]]:
        """The input shape followed by every layer's output shape."""
        shapes = [self.input]
        for layer in self.layers:
            shapes.append(layer.output_shape(shapes[-1]))
        return shapes

    @property
    def output(self) -> tuple[int, ...]:
        return self.shapes()[-1]

    def longest_sum(self) -> int:
        """The longest sum in the case, forward or backward (see ``Layer``)."""
        return max(layer.longest_sum(shape)
                   for layer, shape in zip(self.layers, self.shapes()))

    def flops(self) -> _flops.Flops:
        forward = sum(layer.flops(shape)
                      for layer, shape in zip(self.layers, self.shapes()))
        return _flops.training_flops(forward)


def _per_dim(value, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * n


def conv(weight, stride=1, padding=0, dilation=1, groups=1) -> Layer:
    """A ``F.convNd`` layer; int arguments apply to every spatial dim.

    >>> conv((64, 3, 7, 7), stride=2, padding=3).output_shape((1, 3, 224, 224))
    (1, 64, 112, 112)
    """
    n = len(weight) - 2
    return Layer("conv", tuple(weight), _per_dim(stride, n), _per_dim(padding, n),
                 _per_dim(dilation, n), groups)


def conv_transpose(weight, stride=1, padding=0, output_padding=0, groups=1,
                   dilation=1) -> Layer:
    """A ``F.conv_transposeNd`` layer; int arguments apply to every spatial dim.

    >>> conv_transpose((128, 64, 4, 4), stride=2, padding=1).output_shape(
    ...     (4, 128, 16, 16))
    (4, 64, 32, 32)
    """
    n = len(weight) - 2
    return Layer("conv_transpose", tuple(weight), _per_dim(stride, n),
                 _per_dim(padding, n), _per_dim(dilation, n), groups,
                 _per_dim(output_padding, n))


def _wavenet_stack(channels: int, dilations: tuple[int, ...]) -> tuple[Layer, ...]:
    # Kernel 2 and no padding: each layer shortens the sequence by its dilation,
    # which is WaveNet's causal convolution without the left pad.
    return tuple(conv((channels, channels, 2), dilation=d) for d in dilations)


_WAVENET_DILATIONS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

CASES: tuple[Case, ...] = (
    Case("resnet50-stem-7x7-s2",
         "ResNet-50 stem (conv1): 7x7 stride 2, 3->64 channels, 224->112",
         (2, 3, 224, 224), (conv((64, 3, 7, 7), stride=2, padding=3),)),
    Case("resnet50-3x3-s1",
         "ResNet-50 conv2_x 3x3, 64->64 channels at 56x56",
         (4, 64, 56, 56), (conv((64, 64, 3, 3), padding=1),), quick=True),
    Case("resnet50-3x3-s2",
         "ResNet-50 v1.5 conv3_1 3x3 stride 2, 128->128 channels, 56->28",
         (4, 128, 56, 56), (conv((128, 128, 3, 3), stride=2, padding=1),)),
    Case("resnet50-1x1",
         "ResNet-50 conv2_x 1x1 reduction, 256->64 channels at 56x56",
         (4, 256, 56, 56), (conv((64, 256, 1, 1)),), quick=True),
    Case("resnet50-1x1-s2",
         "ResNet-50 conv3_1 projection shortcut 1x1 stride 2, 256->512, 56->28",
         (4, 256, 56, 56), (conv((512, 256, 1, 1), stride=2),)),
    Case("mobilenetv2-dw-3x3-s1",
         "MobileNetV2 depthwise 3x3, 144 channels at 56x56",
         (2, 144, 56, 56), (conv((144, 1, 3, 3), padding=1, groups=144),),
         quick=True),
    Case("mobilenetv2-dw-3x3-s2",
         "MobileNetV2 depthwise 3x3 stride 2, 96 channels, 112->56",
         (1, 96, 112, 112), (conv((96, 1, 3, 3), stride=2, padding=1, groups=96),)),
    Case("resnext50-g32-3x3-conv2",
         "ResNeXt-50 32x4d conv2_x grouped 3x3: 128 channels in 32 groups at 56x56",
         (1, 128, 56, 56), (conv((128, 4, 3, 3), padding=1, groups=32),)),
    Case("resnext50-g32-3x3-conv5",
         "ResNeXt-50 32x4d conv5_x grouped 3x3: 1024 channels in 32 groups at 7x7",
         (1, 1024, 7, 7), (conv((1024, 32, 3, 3), padding=1, groups=32),),
         quick=True),
    Case("deeplabv3-3x3-d2",
         "DeepLabv3 atrous 3x3, dilation 2, 256->256 channels at 33x33",
         (1, 256, 33, 33), (conv((256, 256, 3, 3), padding=2, dilation=2),)),
    Case("deeplabv3-3x3-d4",
         "DeepLabv3 atrous 3x3, dilation 4, 256->256 channels at 33x33",
         (1, 256, 33, 33), (conv((256, 256, 3, 3), padding=4, dilation=4),),
         quick=True),
    Case("wavenet-1d-stack",
         "WaveNet dilated causal stack: 10 conv1d layers, kernel 2, dilations "
         "1..512, 32 channels, 4096 output samples",
         (4, 32, 4096 + sum(_WAVENET_DILATIONS)),
         _wavenet_stack(32, _WAVENET_DILATIONS)),
    Case("c3d-3x3x3",
         "C3D/I3D-style video conv 3x3x3, 64->64 channels, 8 frames at 28x28",
         (1, 64, 8, 28, 28), (conv((64, 64, 3, 3, 3), padding=1),)),
    Case("dcgan-convT-4x4-s2",
         "DCGAN generator (64x64 images) upsampling: transposed 4x4 stride 2, "
         "128->64 channels, 16->32",
         (4, 128, 16, 16), (conv_transpose((128, 64, 4, 4), stride=2, padding=1),),
         quick=True),
    Case("unet-convT-2x2-s2",
         "U-Net decoder up-convolution: transposed 2x2 stride 2, 128->64 "
         "channels, 56->112",
         (1, 128, 56, 56), (conv_transpose((128, 64, 2, 2), stride=2),)),
    Case("unrolled-32x32-s32",
         "examples/unrolled_gradients.py: the conv in 1/2|k*x - y|^2, 512 "
         "kernels of 32x32 at stride 32 tiling 8 images of 128x128",
         (8, 1, 128, 128), (conv((512, 1, 32, 32), stride=32),), quick=True),
)


def names() -> tuple[str, ...]:
    return tuple(case.name for case in CASES)


def select(suite: str | None, names: list[str] | None = None,
           convs: list[str] | None = None) -> tuple[Case, ...]:
    """The cases to run, in order: the suite's, the named ones, the ``--conv`` ones.

    ``suite`` None means the quick suite when neither ``names`` nor ``convs``
    is given, and no suite otherwise; a case named twice runs once.

    Raises:
      ValueError: an unknown suite or case name, or a malformed ``--conv`` SPEC.
    """
    from . import _custom   # (it builds on this module)
    if suite is not None and suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {SUITES}")
    chosen = []
    if suite is not None or not (names or convs):
        chosen += [c for c in CASES if suite == "full" or c.quick]
    by_name = {case.name: case for case in CASES}
    unknown = [n for n in names or () if n not in by_name]
    if unknown:
        raise ValueError(f"unknown case name(s) {', '.join(map(repr, unknown))}; "
                         "see `jaxgrad bench --list`")
    chosen += [by_name[n] for n in names or ()]
    chosen += [_custom.parse(spec) for spec in convs or ()]
    return tuple({case.name: case for case in chosen}.values())


def label(suite: str | None, names=None, convs=None) -> str:
    """What ran, for the records: "quick", "full", "custom" (--cases/--conv
    only) or "<suite>+custom"."""
    custom = bool(names or convs)
    if suite is None:
        return "custom" if custom else "quick"
    return f"{suite}+custom" if custom else suite
