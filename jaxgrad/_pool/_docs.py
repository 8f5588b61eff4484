"""The docstrings of the public pooling functions, by rank.

The functions are ``VARIANTS`` of ``_pool``'s N-d implementations, made in
``_ranked``; the docstrings live here to keep ``_pool`` about the pooling.
"""


# Max pooling: max_pool{1,2,3}d.
MAX_POOL = {
    1: """1-D max pooling, as ``torch.nn.functional.max_pool1d``.

    ``y[n, c, o] = max_{j < K} x̂[n, c, o·s - p + j·d]``, padding never chosen.
    The gradient goes to one position per window: the last NaN if the window
    holds one, else its first maximum; overlapping windows accumulate.

    Args:
      input: (N, C, L) or unbatched (C, L), a floating or integer
        array (an integer one has no gradient).
      kernel_size: K, an int or a 1-tuple, >= 1.
      stride: s, defaults to ``kernel_size``.
      padding: p on both sides, at most K/2.
      dilation: d, the spacing of the taps, >= 1.
      ceil_mode: round the output size up; the last window must still start
        inside the input or the left padding.
      return_indices: also return the flat index of each pick.

    Returns:
      (N, C, L_out) (or (C, L_out)) in the input's dtype, with
      L_out = ⌊(L + 2p - d(K-1) - 1) / s⌋ + 1 (⌈·⌉ with ``ceil_mode``); with
      ``return_indices``, also int64 indices (int32 without x64) into L.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1., 3., 2., 5., 4.]], jnp.float32)
      >>> y, i = jaxgrad.max_pool1d(x, 2, stride=1, return_indices=True)
      >>> y.tolist(), i.tolist()
      ([[3.0, 3.0, 5.0, 5.0]], [[1, 1, 3, 3]])
    """,
    2: """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    ``y[n, c, oh, ow] = max_{jh, jw} x̂[n, c, oh·s_h - p_h + jh·d_h, ow·s_w - p_w + jw·d_w]``.
    The gradient goes to one position per window: the last NaN in row-major
    window order if there is one, else the first maximum; padding is never
    picked and overlapping windows accumulate.

    Args:
      input: (N, C, H, W) or unbatched (C, H, W), a floating or integer
        array (an integer one has no gradient).
      kernel_size: (K_h, K_w), an int, or a 1-tuple for every dim (as torch), >= 1.
      stride: defaults to ``kernel_size``.
      padding: int or pair, each at most half of its kernel size.
      dilation: int or pair, >= 1.
      ceil_mode: round output sizes up; the last window must still start
        inside the input or the left padding.
      return_indices: also return each pick's flat index ``h·W + w``.

    Returns:
      (N, C, H_out, W_out) (or unbatched) in the input's dtype, sizes as in
      :func:`max_pool1d` per dim; with ``return_indices``, also the indices
      (int64, or int32 without x64).

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4)
      >>> jaxgrad.max_pool2d(x, 2).tolist()
      [[[5.0, 7.0], [13.0, 15.0]]]
    """,
    3: """3-D max pooling, as ``torch.nn.functional.max_pool3d``.

    Same rules as :func:`max_pool2d` over three spatial dims (row-major window
    order d, h, w; flat indices ``d·H·W + h·W + w``).

    Args:
      input: (N, C, D, H, W) or unbatched (C, D, H, W), a floating or integer
        array (an integer one has no gradient).
      kernel_size: an int or a 3-tuple, >= 1.
      stride: defaults to ``kernel_size``.
      padding: int or 3-tuple, each at most half of its kernel size.
      dilation: int or 3-tuple, >= 1.
      ceil_mode: round output sizes up (see :func:`max_pool1d`).
      return_indices: also return each pick's flat index.

    Returns:
      (N, C, D_out, H_out, W_out) (or unbatched) in the input's dtype; with
      ``return_indices``, also the indices.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> y, i = jaxgrad.max_pool3d(x, 2, return_indices=True)
      >>> y.tolist(), i.tolist()
      ([[[[7.0]]]], [[[[7]]]])
    """,
}


# Average pooling: avg_pool{1,2,3}d.
AVG_POOL = {
    1: """1-D average pooling, as ``torch.nn.functional.avg_pool1d``.

    ``y[n, c, o] = (1/D[o]) Σ_{j < K} x̂[n, c, o·s - p + j]`` with zero padding.
    The divisor D[o] counts the window's padding when ``count_include_pad``
    (but never what a ceil_mode window overhangs past the padded end), else
    only its input entries. (torch's avg_pool1d has no ``divisor_override``.)

    Args:
      input: (N, C, L) or unbatched (C, L), a floating or integer
        array (an integer one has no gradient; its mean is the integer
        sum divided towards 0, as torch's).
      kernel_size: K, an int or a 1-tuple, >= 1.
      stride: s, defaults to ``kernel_size``.
      padding: p on both sides, at most K/2.
      ceil_mode: round the output size up (see :func:`max_pool1d`).
      count_include_pad: count the zero padding in the divisor.

    Returns:
      (N, C, L_out) (or (C, L_out)) in the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1., 2., 3., 4., 5.]], jnp.float32)
      >>> jaxgrad.avg_pool1d(x, 2, ceil_mode=True).tolist()
      [[1.5, 3.5, 5.0]]
    """,
    2: """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    ``y[n, c, oh, ow] = (1/D[oh, ow]) Σ_{jh, jw} x̂[n, c, oh·s_h - p_h + jh, ow·s_w - p_w + jw]``
    with zero padding and D[oh, ow] = D_h[oh]·D_w[ow] (see :func:`avg_pool1d`)
    unless ``divisor_override`` replaces it.

    Args:
      input: (N, C, H, W) or unbatched (C, H, W), a floating or integer
        array (an integer one has no gradient; its mean is the integer
        sum divided towards 0, as torch's).
      kernel_size: (K_h, K_w), an int, or a 1-tuple for every dim (as torch), >= 1.
      stride: defaults to ``kernel_size``.
      padding: int or pair, each at most half of its kernel size.
      ceil_mode: round output sizes up (see :func:`max_pool1d`).
      count_include_pad: count the zero padding in the divisor.
      divisor_override: a non-zero int to divide every window sum by.

    Returns:
      (N, C, H_out, W_out) (or unbatched) in the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.ones((1, 3, 3), jnp.float32)
      >>> jaxgrad.avg_pool2d(x, 2, padding=1, count_include_pad=False).tolist()
      [[[1.0, 1.0], [1.0, 1.0]]]
      >>> jaxgrad.avg_pool2d(x, 2, padding=1).tolist()
      [[[0.25, 0.5], [0.5, 1.0]]]
    """,
    3: """3-D average pooling, as ``torch.nn.functional.avg_pool3d``.

    Same rules as :func:`avg_pool2d` over three spatial dims.

    Args:
      input: (N, C, D, H, W) or unbatched (C, D, H, W), a floating or integer
        array (an integer one has no gradient; its mean is the integer
        sum divided towards 0, as torch's).
      kernel_size: an int or a 3-tuple, >= 1.
      stride: defaults to ``kernel_size``.
      padding: int or 3-tuple, each at most half of its kernel size.
      ceil_mode: round output sizes up (see :func:`max_pool1d`).
      count_include_pad: count the zero padding in the divisor.
      divisor_override: a non-zero int to divide every window sum by.

    Returns:
      (N, C, D_out, H_out, W_out) (or unbatched) in the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> jaxgrad.avg_pool3d(x, 2, divisor_override=2).tolist()
      [[[[14.0]]]]
    """,
}


# Adaptive max pooling: adaptive_max_pool{1,2,3}d.
ADAPTIVE_MAX_POOL = {
    1: """1-D adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool1d``.

    ``y[n, c, o] = max_{i ∈ [⌊o·L/O⌋, ⌈(o+1)·L/O⌉)} x[n, c, i]``, the gradient
    going to one position per bin, chosen as in :func:`max_pool1d`.

    Args:
      input: (N, C, L) or unbatched (C, L), a float array.
      output_size: O, an int or a 1-tuple, >= 0.
      return_indices: also return each pick's index into L.

    Returns:
      (N, C, O) (or (C, O)) in the input's dtype; with ``return_indices``, also
      the indices (int64, or int32 without x64).

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1., 3., 2., 5., 4.]], jnp.float32)
      >>> y, i = jaxgrad.adaptive_max_pool1d(x, 3, return_indices=True)
      >>> y.tolist(), i.tolist()
      ([[3.0, 5.0, 5.0]], [[1, 3, 3]])
    """,
    2: """2-D adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d``.

    Args:
      input: (N, C, H, W) or unbatched (C, H, W), a float array.
      output_size: an int or a pair of ints >= 0 or None (None keeps that
        dim's size).
      return_indices: also return each pick's flat index ``h·W + w``.

    Returns:
      (N, C, H_out, W_out) (or unbatched) in the input's dtype; with
      ``return_indices``, also the indices.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[[1., 4.], [4., 2.]]], jnp.float32)
      >>> y, i = jaxgrad.adaptive_max_pool2d(x, 1, return_indices=True)
      >>> y.tolist(), i.tolist()
      ([[[4.0]]], [[[1]]])
    """,
    3: """3-D adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool3d``.

    Args:
      input: (N, C, D, H, W) or unbatched (C, D, H, W), a float array.
      output_size: an int or a 3-tuple of ints >= 0 or None (None keeps that
        dim's size).
      return_indices: also return each pick's flat index ``d·H·W + h·W + w``.

    Returns:
      (N, C, D_out, H_out, W_out) (or unbatched) in the input's dtype; with
      ``return_indices``, also the indices.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> jaxgrad.adaptive_max_pool3d(x, (1, 2, 1)).tolist()
      [[[[5.0], [7.0]]]]
    """,
}


# Adaptive average pooling: adaptive_avg_pool{1,2,3}d.
ADAPTIVE_AVG_POOL = {
    1: """1-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool1d``.

    ``y[n, c, o] = mean_{i ∈ [⌊o·L/O⌋, ⌈(o+1)·L/O⌉)} x[n, c, i]``.

    Args:
      input: (N, C, L) or unbatched (C, L), a float array.
      output_size: O, an int or a 1-tuple, >= 0.

    Returns:
      (N, C, O) (or (C, O)) in the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.array([[1., 2., 3., 4., 5.]], jnp.float32)
      >>> jaxgrad.adaptive_avg_pool1d(x, 3).tolist()
      [[1.5, 3.0, 4.5]]
    """,
    2: """2-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Each output averages the product of one bin per dim (see
    :func:`adaptive_avg_pool1d`); ``output_size=1`` is global average pooling.

    Args:
      input: (N, C, H, W) or unbatched (C, H, W), a float array.
      output_size: an int or a pair of ints >= 0 or None (None keeps that
        dim's size).

    Returns:
      (N, C, H_out, W_out) (or unbatched) in the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(12, dtype=jnp.float32).reshape(1, 3, 4)
      >>> jaxgrad.adaptive_avg_pool2d(x, (1, None)).tolist()
      [[[4.0, 5.0, 6.0, 7.0]]]
    """,
    3: """3-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool3d``.

    Args:
      input: (N, C, D, H, W) or unbatched (C, D, H, W), a float array.
      output_size: an int or a 3-tuple of ints >= 0 or None (None keeps that
        dim's size).

    Returns:
      (N, C, D_out, H_out, W_out) (or unbatched) in the input's dtype.

    Raises:
      ValueError, TypeError: at trace time, naming the argument and its value.

    Example:
      >>> import jax.numpy as jnp, jaxgrad
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> jaxgrad.adaptive_avg_pool3d(x, 1).tolist()
      [[[[3.5]]]]
    """,
}
