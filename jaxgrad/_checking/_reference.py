"""Independent references for checking jaxgrad: plain ``lax`` ops and PyTorch.

Nothing here calls jaxgrad's kernels. The lax references are differentiated
by JAX's own autodiff; the torch references by torch's autograd. Used by
``jaxgrad check`` and by the test suite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def lax_conv(x, w, b, stride, padding, dilation, groups, padding_mode="zeros"):
    """Plain-lax convolution; ``padding`` is ((lo, hi), ...), all args batched."""
    if padding_mode != "zeros":
        x = jnp.pad(x, ((0, 0), (0, 0)) + tuple(padding),
                    mode=_NP_PAD_MODE[padding_mode])
        padding = ((0, 0),) * len(padding)
    y = lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                 feature_group_count=groups,
                                 precision=lax.Precision.HIGHEST)
    return y if b is None else y + b.reshape((1, -1) + (1,) * (y.ndim - 2))


def lax_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation):
    """torch's conv_transpose as JAX autodiff's adjoint of a plain lax conv.

    ``x`` (N, C_in, *I) is the cotangent of a convolution with weight ``w``
    (C_in, C_out/G, *K) read as (C_out', C_in'/G, *K), whose input has the
    transposed output size. When output_padding >= stride (allowed for
    dilation > stride) that convolution has extra outputs; their cotangent is 0.
    """
    out = tuple((i - 1) * s - 2 * p + d * (k - 1) + a + 1 for i, k, s, p, a, d in
                zip(x.shape[2:], w.shape[2:], stride, padding, output_padding,
                    dilation))
    z = jnp.zeros((x.shape[0], w.shape[1] * groups) + out, x.dtype)
    pads = tuple((p, p) for p in padding)
    y, vjp = jax.vjp(lambda z: lax_conv(z, w, None, stride, pads, dilation, groups), z)
    extra = tuple((0, ys - xs) for ys, xs in zip(y.shape[2:], x.shape[2:]))
    (result,) = vjp(jnp.pad(x, ((0, 0), (0, 0)) + extra))
    return result if b is None else result + b.reshape((1, -1) + (1,) * len(out))


# --------------------------------------------------------------------------
# PyTorch references (imported lazily: torch is optional at run time).


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def to_torch(array, requires_grad=False):
    import torch
    t = torch.from_numpy(np.array(array, dtype=np.float64))
    return t.requires_grad_(requires_grad)


def torch_conv(x, w, b, stride, padding, dilation, groups, padding_mode="zeros"):
    """torch's ``nn.ConvNd`` semantics on float64 tensors; ``padding`` as torch takes it."""
    import torch
    import torch.nn.functional as F
    n = w.ndim - 2
    if padding_mode == "zeros":
        fn = (F.conv1d, F.conv2d, F.conv3d)[n - 1]
        if _is_pairs(padding):
            # torch takes no per-side pairs: pad explicitly (F.pad lists the
            # last dim first), then convolve unpadded.
            x = F.pad(x, [v for pair in reversed(padding) for v in pair])
            padding = 0
        return fn(x, w, b, stride, padding, dilation, groups)
    module_cls = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)[n - 1]
    module = module_cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]),
                        stride=stride, padding=padding, dilation=dilation,
                        groups=groups, bias=b is not None, padding_mode=padding_mode,
                        dtype=x.dtype)
    params = {"weight": w} if b is None else {"weight": w, "bias": b}
    return torch.func.functional_call(module, params, (x,))


def _is_pairs(padding) -> bool:
    return (isinstance(padding, (tuple, list))
            and all(isinstance(p, (tuple, list)) for p in padding))


def torch_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation):
    import torch.nn.functional as F
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[w.ndim - 3]
    return fn(x, w, b, stride, padding, output_padding, groups, dilation)
