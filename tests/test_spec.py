"""Pure tests of ``jaxgrad/_spec.py``: shape arithmetic and argument parsing.

No arrays and no JAX: every expected value is either worked out by hand (the
arithmetic is in a comment next to it) or computed by an independent
reference (``numpy.pad``, or brute-force enumeration of window positions).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxgrad import _args
from jaxgrad._conv import _spec
from jaxgrad._pool import _spec as _pool_spec
from jaxgrad._conv._spec import conv_output_size, conv_transpose_output_size, effective_kernel, leftover, parse_padding, same_padding
from jaxgrad._pad import pad_source_index
from jaxgrad._args import int_tuple


# --------------------------------------------------------------------------
# Independent references.


def window_starts(size: int, kernel: int, stride: int, pad: tuple[int, int],
                  dilation: int) -> list[int]:
    """Start offsets (in the padded axis) of every window that fits, by search."""
    lo, hi = pad
    padded = size + lo + hi
    last_tap = dilation * (kernel - 1)       # offset of the window's last tap
    return [start for start in range(0, padded, stride)
            if start + last_tap < padded]


def trailing_unreached(size: int, kernel: int, stride: int, pad: tuple[int, int],
                       dilation: int) -> int:
    """Padded rows after the end of the last window, by search."""
    lo, hi = pad
    padded = size + lo + hi
    last = window_starts(size, kernel, stride, pad, dilation)[-1]
    return padded - (last + dilation * (kernel - 1) + 1)


_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --------------------------------------------------------------------------
# pad_source_index against numpy.pad.


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8])
def test_pad_source_index_matches_numpy_pad(mode, size):
    """The copied indices equal numpy.pad(arange(size)) for every (lo, hi)."""
    source = np.arange(size)
    for lo, hi in itertools.product(range(0, 2 * size + 3), repeat=2):
        expected = tuple(int(i) for i in np.pad(source, (lo, hi),
                                                mode=_NUMPY_MODE[mode]))
        assert pad_source_index(mode, size, (lo, hi)) == expected, (lo, hi)


@pytest.mark.parametrize("mode,size,pad,expected", [
    # arange(4) = 0 1 2 3; reflect mirrors without repeating the edge.
    ("reflect", 4, (2, 2), (2, 1, 0, 1, 2, 3, 2, 1)),
    ("reflect", 3, (0, 3), (0, 1, 2, 1, 0, 1)),
    # replicate repeats the edge.
    ("replicate", 4, (2, 1), (0, 0, 0, 1, 2, 3, 3)),
    ("replicate", 1, (2, 2), (0, 0, 0, 0, 0)),
    # circular wraps around.
    ("circular", 4, (2, 3), (2, 3, 0, 1, 2, 3, 0, 1, 2)),
    ("circular", 2, (3, 0), (1, 0, 1, 0, 1)),
])
def test_pad_source_index_by_hand(mode, size, pad, expected):
    """Small cases written out by hand."""
    assert pad_source_index(mode, size, pad) == expected


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("size", [1, 4, 9])
def test_pad_source_index_no_padding_is_identity(mode, size):
    """(0, 0) padding copies every index once, in order."""
    assert pad_source_index(mode, size, (0, 0)) == tuple(range(size))


@pytest.mark.parametrize("mode", ["zeros", "edge", "wrap", "symmetric", ""])
def test_pad_source_index_unknown_mode(mode):
    """Only the three border modes have source indices."""
    with pytest.raises(ValueError, match=r"pad_source_index: .*`mode`"):
        pad_source_index(mode, 4, (1, 1))


# --------------------------------------------------------------------------
# same_padding.


@pytest.mark.parametrize("kernel,dilation,expected", [
    (1, 1, (0, 0)),    # total 0
    (2, 1, (0, 1)),    # total 1: odd extra on the high side
    (3, 1, (1, 1)),    # total 2
    (4, 1, (1, 2)),    # total 3
    (5, 1, (2, 2)),    # total 4
    (6, 1, (2, 3)),    # total 5
    (3, 2, (2, 2)),    # total 2*2 = 4
    (2, 3, (1, 2)),    # total 3*1 = 3
    (4, 3, (4, 5)),    # total 3*3 = 9
    (1, 7, (0, 0)),    # total 7*0 = 0
    (5, 5, (10, 10)),  # total 5*4 = 20
])
def test_same_padding_by_hand(kernel, dilation, expected):
    """Total d(K-1), split with the odd extra on the high side (as torch)."""
    assert same_padding(kernel, dilation) == expected


@pytest.mark.parametrize("kernel", range(1, 8))
@pytest.mark.parametrize("dilation", range(1, 5))
def test_same_padding_keeps_the_size(kernel, dilation):
    """With stride 1, 'same' padding gives exactly `size` windows."""
    lo, hi = same_padding(kernel, dilation)
    assert 0 <= hi - lo <= 1
    for size in (1, 2, 5, 9):
        assert len(window_starts(size, kernel, 1, (lo, hi), dilation)) == size


# --------------------------------------------------------------------------
# effective_kernel, conv_output_size, leftover.


@pytest.mark.parametrize("kernel,dilation,expected", [
    (1, 1, 1), (3, 1, 3), (3, 2, 5),   # 2*(3-1)+1 = 5
    (4, 3, 10),                        # 3*(4-1)+1 = 10
    (1, 9, 1),                         # 9*0+1 = 1
])
def test_effective_kernel_by_hand(kernel, dilation, expected):
    """K' = d(K-1)+1."""
    assert effective_kernel(kernel, dilation) == expected


# (I, K, s, (lo, hi), d, O, r) with O = floor((I+lo+hi-K')/s)+1 and
# r = (I+lo+hi-K') mod s, worked out by hand.
_CONV_CASES = [
    (7, 3, 1, (0, 0), 1, 5, 0),    # 7-3 = 4;        4/1 -> 4+1 = 5, r 0
    (7, 3, 2, (1, 1), 1, 4, 0),    # 9-3 = 6;        6/2 -> 3+1 = 4, r 0
    (8, 3, 2, (1, 1), 1, 4, 1),    # 10-3 = 7;       7/2 -> 3+1 = 4, r 1
    (10, 3, 1, (0, 0), 2, 6, 0),   # K' = 5; 10-5 = 5 -> 5+1 = 6
    (5, 5, 1, (0, 0), 1, 1, 0),    # 5-5 = 0 -> 1
    (5, 2, 3, (0, 1), 1, 2, 1),    # 6-2 = 4;        4/3 -> 1+1 = 2, r 1
    (1, 1, 1, (0, 0), 1, 1, 0),    # 1-1 = 0 -> 1
    (6, 3, 3, (2, 1), 2, 2, 1),    # K' = 5; 9-5 = 4; 4/3 -> 1+1 = 2, r 1
    (9, 4, 2, (1, 2), 1, 5, 0),    # 12-4 = 8;       8/2 -> 4+1 = 5, r 0
    (10, 2, 4, (0, 0), 3, 2, 2),   # K' = 4; 10-4 = 6; 6/4 -> 1+1 = 2, r 2
    (4, 7, 5, (3, 0), 1, 1, 0),    # 7-7 = 0 -> 1, r 0
    (11, 3, 5, (0, 0), 1, 2, 3),   # 11-3 = 8;       8/5 -> 1+1 = 2, r 3
]


@pytest.mark.parametrize("size,kernel,stride,pad,dilation,out,rest", _CONV_CASES)
def test_conv_output_size_by_hand(size, kernel, stride, pad, dilation, out, rest):
    """O = floor((I + lo + hi - K') / s) + 1 on hand-computed cases."""
    assert conv_output_size(size, kernel, stride, pad, dilation) == out


@pytest.mark.parametrize("size,kernel,stride,pad,dilation,out,rest", _CONV_CASES)
def test_leftover_by_hand(size, kernel, stride, pad, dilation, out, rest):
    """r = (I + lo + hi - K') mod s on hand-computed cases."""
    assert leftover(size, kernel, stride, pad, dilation) == rest


def _grid():
    for size, kernel, stride, dilation in itertools.product(
            range(1, 10), range(1, 5), range(1, 5), range(1, 4)):
        for pad in ((0, 0), (1, 1), (0, 2), (2, 1)):
            if dilation * (kernel - 1) + 1 <= size + sum(pad):
                yield size, kernel, stride, pad, dilation


def test_conv_output_size_and_leftover_by_enumeration():
    """Both agree with counting the windows that fit, over a grid of shapes."""
    for size, kernel, stride, pad, dilation in _grid():
        args = (size, kernel, stride, pad, dilation)
        assert conv_output_size(*args) == len(window_starts(*args)), args
        assert leftover(*args) == trailing_unreached(*args), args
        assert 0 <= leftover(*args) < stride, args


# --------------------------------------------------------------------------
# conv_transpose_output_size.


@pytest.mark.parametrize("size,kernel,stride,padding,output_padding,dilation,out", [
    (3, 3, 2, 1, 1, 1, 6),   # 2*2 - 2 + 1*2 + 1 + 1 = 6
    (4, 4, 2, 1, 0, 1, 8),   # 3*2 - 2 + 1*3 + 0 + 1 = 8
    (5, 3, 1, 0, 0, 2, 9),   # 4*1 - 0 + 2*2 + 0 + 1 = 9
    (1, 1, 1, 0, 0, 1, 1),   # 0 - 0 + 0 + 0 + 1 = 1
    (2, 2, 2, 0, 0, 1, 4),   # 1*2 - 0 + 1 + 0 + 1 = 4
    (7, 3, 1, 0, 0, 1, 9),   # 6*1 - 0 + 2 + 0 + 1 = 9
    (3, 5, 3, 2, 2, 1, 9),   # 2*3 - 4 + 4 + 2 + 1 = 9
    (4, 3, 2, 1, 2, 3, 13),  # 3*2 - 2 + 3*2 + 2 + 1 = 13
])
def test_conv_transpose_output_size_by_hand(size, kernel, stride, padding,
                                            output_padding, dilation, out):
    """(I-1)s - 2p + d(K-1) + a + 1, torch's formula."""
    assert conv_transpose_output_size(size, kernel, stride, padding,
                                      output_padding, dilation) == out


def test_conv_transpose_output_size_inverts_conv():
    """A conv over the transposed output, padded (p, p), has I windows again.

    O = (I-1)s - 2p + K' + a, so the padded axis O + 2p has (I-1)s + a rows
    past the first window: floor(((I-1)s + a) / s) + 1 = I for a < s.
    Checked by counting windows, over a grid.
    """
    for size, kernel, stride, padding, dilation in itertools.product(
            range(1, 6), range(1, 5), range(1, 4), range(0, 3), range(1, 3)):
        for output_padding in range(stride):
            out = conv_transpose_output_size(size, kernel, stride, padding,
                                             output_padding, dilation)
            if out < 1:
                continue
            windows = window_starts(out, kernel, stride, (padding, padding),
                                    dilation)
            assert len(windows) == size, (size, kernel, stride, padding,
                                          output_padding, dilation)


# --------------------------------------------------------------------------
# parse_padding.


def _parse(padding, n=2, kernel=(3, 3), stride=(1, 1), dilation=(1, 1)):
    return parse_padding("f", padding, n, kernel[:n], stride[:n], dilation[:n])


@pytest.mark.parametrize("padding,n,expected", [
    (0, 1, ((0, 0),)),
    (2, 2, ((2, 2), (2, 2))),
    (1, 3, ((1, 1), (1, 1), (1, 1))),
    (np.int64(3), 1, ((3, 3),)),
    ((1, 2), 2, ((1, 1), (2, 2))),                  # symmetric per dim
    ([0, 4], 2, ((0, 0), (4, 4))),
    ((5,), 1, ((5, 5),)),
    (((1, 2), (0, 3)), 2, ((1, 2), (0, 3))),        # (lo, hi) pairs
    ([[2, 0]], 1, ((2, 0),)),
    (((0, 1), (2, 3), (4, 5)), 3, ((0, 1), (2, 3), (4, 5))),
    ("valid", 1, ((0, 0),)),
    ("valid", 3, ((0, 0), (0, 0), (0, 0))),
], ids=str)
def test_parse_padding_numeric_and_valid(padding, n, expected):
    """Ints, tuples of ints and tuples of pairs become (lo, hi) per dim."""
    got = _parse(padding, n, kernel=(3, 3, 3), stride=(1, 1, 1),
                 dilation=(1, 1, 1))
    assert got == expected
    assert all(type(v) is int for pair in got for v in pair)


@pytest.mark.parametrize("kernel,dilation,expected", [
    ((3, 4), (1, 1), ((1, 1), (1, 2))),     # totals 2 and 3
    ((3, 2), (2, 3), ((2, 2), (1, 2))),     # totals 2*2 = 4 and 3*1 = 3
    ((1, 5), (4, 1), ((0, 0), (2, 2))),     # totals 0 and 4
])
def test_parse_padding_same(kernel, dilation, expected):
    """'same' pads d(K-1) per dim, odd extra on the high side."""
    assert _parse("same", 2, kernel, (1, 1), dilation) == expected


@pytest.mark.parametrize("stride", [(2, 1), (1, 3), (2, 2)])
def test_parse_padding_same_rejects_stride(stride):
    """'same' is for stride 1 only (as torch)."""
    with pytest.raises(ValueError, match=r"^f: .*'same'.*`stride`"):
        _parse("same", 2, (3, 3), stride)


@pytest.mark.parametrize("padding,exc", [
    ("full", ValueError), ("SAME", ValueError),
    (-1, ValueError), ((1, -1), ValueError), (((0, 0), (0, -1)), ValueError),
    ((1, 1, 1), ValueError), (((1, 2, 3), (0, 0)), ValueError),
    (1.5, TypeError), (True, TypeError), (((0, 1.0), (0, 0)), TypeError),
], ids=str)
def test_parse_padding_rejects(padding, exc):
    """Bad paddings raise, naming the function and `padding`."""
    with pytest.raises(exc, match=r"^f: .*`padding`"):
        _parse(padding)


# --------------------------------------------------------------------------
# int_tuple.


@pytest.mark.parametrize("value,n,minimum,expected", [
    (3, 2, 1, (3, 3)),
    (1, 1, 1, (1,)),
    (0, 3, 0, (0, 0, 0)),
    ((1, 2), 2, 1, (1, 2)),
    ([4, 5, 6], 3, 1, (4, 5, 6)),
    (np.int32(2), 2, 1, (2, 2)),
    ((np.int64(1), np.uint8(7)), 2, 1, (1, 7)),
    (range(1, 4), 3, 1, (1, 2, 3)),
    ((0, 5), 2, 0, (0, 5)),
], ids=str)
def test_int_tuple_normalises(value, n, minimum, expected):
    """An int or a length-n sequence becomes a tuple of n Python ints."""
    got = int_tuple("f", "arg", value, n, minimum=minimum)
    assert got == expected
    assert type(got) is tuple and all(type(v) is int for v in got)


@pytest.mark.parametrize("value,n,minimum,exc", [
    (0, 2, 1, ValueError), (-1, 1, 0, ValueError), ((1, 0), 2, 1, ValueError),
    ((1, 2), 3, 1, ValueError), ((), 1, 1, ValueError), ((1, 1, 1), 2, 1, ValueError),
    (True, 1, 1, TypeError), ((1, False), 2, 0, TypeError), (1.0, 1, 1, TypeError),
    ("2", 1, 1, TypeError), (None, 1, 1, TypeError), (((1, 1),), 1, 0, TypeError),
], ids=str)
def test_int_tuple_rejects(value, n, minimum, exc):
    """Wrong length, below minimum, bools, floats and strings are rejected."""
    with pytest.raises(exc, match=r"^f: `arg`"):
        int_tuple("f", "arg", value, n, minimum=minimum)


# --------------------------------------------------------------------------
# Other small checks.


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_parse_padding_mode_accepts(mode):
    assert _spec.parse_padding_mode("f", mode) == mode


@pytest.mark.parametrize("groups,expected", [(1, 1), (4, 4), (np.int64(3), 3)])
def test_parse_groups_accepts(groups, expected):
    got = _spec.parse_groups("f", groups)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("spatial,kernel,padding,dilation,fits", [
    ((5,), (5,), ((0, 0),), (1,), True),          # 5 <= 5
    ((5,), (6,), ((0, 0),), (1,), False),         # 6 > 5
    ((4,), (6,), ((1, 1),), (1,), True),          # 6 <= 4+2
    ((5,), (3,), ((0, 0),), (3,), False),         # 3*2+1 = 7 > 5
    ((5,), (3,), ((1, 1),), (3,), True),          # 7 <= 5+2
    ((8, 3), (3, 3), ((0, 0), (0, 0)), (1, 2), False),  # dim 1: 5 > 3
])
def test_check_kernel_fits(spatial, kernel, padding, dilation, fits):
    """The dilated kernel must fit in the padded input, every dim."""
    if fits:
        _spec.check_kernel_fits("f", spatial, kernel, padding, dilation)
    else:
        with pytest.raises(ValueError, match=r"^f: .*kernel"):
            _spec.check_kernel_fits("f", spatial, kernel, padding, dilation)


@pytest.mark.parametrize("groups,c_in,c_out,w_in,error", [
    (1, 4, 6, 4, None),
    (2, 4, 6, 2, None),
    (4, 4, 8, 1, None),            # depthwise
    (3, 4, 6, 1, "input"),         # 4 % 3
    (2, 4, 5, 2, "output"),        # 5 % 2
    (2, 4, 6, 4, "expects"),       # 4 * 2 != 4
    (1, 4, 6, 3, "expects"),       # 3 * 1 != 4
])
def test_check_groups(groups, c_in, c_out, w_in, error):
    """groups | C_in, groups | C_out, weight.shape[1] * groups == C_in."""
    if error is None:
        assert _spec.check_groups("f", groups, c_in, c_out, w_in) == groups
    else:
        with pytest.raises(ValueError, match=rf"^f: .*{error}"):
            _spec.check_groups("f", groups, c_in, c_out, w_in)


def test_conv_spec_is_hashable_and_frozen():
    """Specs are static under jit: equal specs hash equal, fields are frozen."""
    a = _spec.ConvSpec((1, 2), ((0, 1), (2, 2)), (1, 1), 1)
    b = _spec.ConvSpec((1, 2), ((0, 1), (2, 2)), (1, 1), 1)
    assert a == b and hash(a) == hash(b) and a.ndim == 2
    with pytest.raises(AttributeError):
        a.groups = 2


def test_conv_output_shape_by_hand():
    """Per-dim conv_output_size, e.g. (7, 8) with K (3, 2), s (2, 3), d (1, 2).

    dim 0: (7 + 1 + 1 - 3) // 2 + 1 = 4;  dim 1: K' = 3, (8 + 0 + 2 - 3) // 3 + 1 = 3.
    """
    spec = _spec.ConvSpec((2, 3), ((1, 1), (0, 2)), (1, 2), 1)
    assert _spec.conv_output_shape((7, 8), (3, 2), spec) == (4, 3)


# ==========================================================================
# Pooling: output sizes, window tables, divisors, adaptive bins, parsers.


def pool_windows_by_search(size: int, kernel: int, stride: int, padding: int,
                           dilation: int, ceil_mode: bool) -> list[int]:
    """Window starts (input coordinates) by search, as torch's docs describe them.

    Without ceil_mode: every window that fits in the padded input. With it,
    one more window if padded rows are left after the last one that fits and
    that window starts inside the input or the left padding.
    """
    lo_start, padded = -padding, size + 2 * padding
    extent = dilation * (kernel - 1) + 1
    starts = [lo_start + k * stride for k in range(padded)
              if k * stride + extent <= padded]
    unreached = padded - (starts[-1] + padding + extent)
    if ceil_mode and unreached > 0 and starts[-1] + stride < size:
        starts.append(starts[-1] + stride)
    return starts


def _pool_grid():
    for size, kernel, stride, dilation in itertools.product(
            range(1, 10), range(1, 5), range(1, 5), range(1, 4)):
        for padding in range(kernel // 2 + 1):
            if dilation * (kernel - 1) + 1 <= size + 2 * padding:
                yield size, kernel, stride, padding, dilation


def test_pool_output_size_by_enumeration():
    """Both modes agree with counting windows over a grid where the kernel fits."""
    for size, kernel, stride, padding, dilation in _pool_grid():
        for ceil_mode in (False, True):
            args = (size, kernel, stride, padding, dilation, ceil_mode)
            assert _pool_spec.pool_output_size(*args) == len(pool_windows_by_search(*args)), args


# (I, K, s, p, d, ceil_mode, O) worked out by hand; span = I + 2p - d(K-1) - 1.
@pytest.mark.parametrize("size,kernel,stride,padding,dilation,ceil_mode,out", [
    (7, 3, 2, 1, 1, False, 4),   # span 6: 6//2 + 1 = 4
    (8, 3, 2, 1, 1, False, 4),   # span 7: 7//2 + 1 = 4
    (8, 3, 2, 1, 1, True, 5),    # ceil(7/2) + 1 = 5; start 4*2 = 8 < 8+1 keeps it
    (9, 2, 2, 1, 1, True, 5),    # span 9: ceil 5 -> 6, start 5*2 = 10 >= 9+1 drops
    (5, 2, 2, 1, 1, True, 3),    # span 5: ceil 3 -> 4, start 3*2 = 6 >= 5+1 drops
    (5, 2, 2, 0, 1, True, 3),    # span 3: ceil 2 -> 3, start 4 < 5 keeps
    (3, 4, 4, 0, 1, True, 1),    # span -1: ceil 0 -> 1, start 0 < 3 keeps (overhangs)
    (3, 4, 4, 0, 1, False, 0),   # span -1: -1//4 + 1 = 0 (too small)
    (9, 3, 1, 0, 3, False, 3),   # K' = 7: span 2 -> 3
    (10, 2, 3, 1, 4, True, 4),   # K' = 5: span 7: ceil(7/3) = 3 -> 4, start 9 < 11 keeps
])
def test_pool_output_size_by_hand(size, kernel, stride, padding, dilation,
                                  ceil_mode, out):
    assert _pool_spec.pool_output_size(size, kernel, stride, padding, dilation,
                                  ceil_mode) == out


def test_pool_windows_by_hand():
    """Window o reads rows o*s - p + j*d; entries outside [0, I) are padding."""
    win = _pool_spec.pool_windows(6, 3, 2, 1, 1, 4)
    assert win.index == ((-1, 0, 1), (1, 2, 3), (3, 4, 5), (5, 6, 7))
    assert win.out == 4 and win.taps == 3 and win.pad == (1, 2)
    assert win.valid().tolist() == [[False, True, True], [True] * 3, [True] * 3,
                                    [True, False, False]]
    assert win.progression == (-1, 2, 1)
    dilated = _pool_spec.pool_windows(5, 2, 1, 1, 3, 3)
    assert dilated.index == ((-1, 2), (0, 3), (1, 4)) and dilated.progression == (-1, 1, 3)


def test_pool_windows_match_search():
    """Rows of every window equal start + j*d for the searched starts."""
    for size, kernel, stride, padding, dilation in _pool_grid():
        for ceil_mode in (False, True):
            starts = pool_windows_by_search(size, kernel, stride, padding, dilation,
                                            ceil_mode)
            win = _pool_spec.pool_windows(size, kernel, stride, padding, dilation,
                                     len(starts))
            expected = tuple(tuple(a + j * dilation for j in range(kernel))
                             for a in starts)
            assert win.index == expected and win.size == size


@pytest.mark.parametrize("size,out,expected", [
    (5, 3, ((0, 2), (1, 4), (3, 5))),            # 5/3: overlapping bins
    (7, 4, ((0, 2), (1, 4), (3, 6), (5, 7))),
    (10, 3, ((0, 4), (3, 7), (6, 10))),
    (1, 4, ((0, 1),) * 4),                       # upsampling repeats the row
    (3, 7, ((0, 1), (0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 3))),
    (6, 3, ((0, 2), (2, 4), (4, 6))),            # divides: no overlap
    (4, 1, ((0, 4),)),                           # global
    (4, 0, ()),                                  # empty output
])
def test_adaptive_bins_by_hand(size, out, expected):
    assert _pool_spec.adaptive_bins(size, out) == expected


def test_adaptive_bins_match_float_formula():
    """[floor(o*I/O), ceil((o+1)*I/O)), compared with float arithmetic."""
    for size, out in itertools.product(range(1, 25), range(1, 25)):
        expected = tuple((int(np.floor(o * size / out)), int(np.ceil((o + 1) * size / out)))
                         for o in range(out))
        assert _pool_spec.adaptive_bins(size, out) == expected, (size, out)


def test_adaptive_windows_fill_short_bins():
    """5 -> 3 has bins of 2, 3, 2 rows; short bins are filled with I (invalid)."""
    win = _pool_spec.adaptive_windows(5, 3)
    assert win.index == ((0, 1, 5), (1, 2, 3), (3, 4, 5))
    assert win.valid().sum(axis=1).tolist() == [2, 3, 2]
    assert win.pad == (0, 1) and win.progression is None
    assert _pool_spec.adaptive_windows(6, 3).progression == (0, 2, 1)   # tiles
    assert _pool_spec.adaptive_windows(4, 1).progression == (0, 4, 1)   # one window: step J
    assert _pool_spec.adaptive_windows(1, 4).progression is None        # step 0
    empty = _pool_spec.adaptive_windows(4, 0)
    assert empty.out == 0 and empty.taps == 1 and empty.pad == (0, 0)
    assert empty.progression is None and empty.table().shape == (0, 1)


# (I, K, s, p, O, count_include_pad, divisors), by hand: window [a, a+K), a = o*s - p.
@pytest.mark.parametrize("size,kernel,stride,padding,out,include,expected", [
    # I=6, K=3, s=2, p=1, ceil: windows [-1,2) [1,4) [3,6) [5,8); padded end 7.
    (6, 3, 2, 1, 4, True, (3, 3, 3, 2)),
    (6, 3, 2, 1, 4, False, (2, 3, 3, 1)),
    # I=5, K=2, s=2, p=0, ceil: [0,2) [2,4) [4,6): the last overhangs past 5.
    (5, 2, 2, 0, 3, True, (2, 2, 1)),
    (5, 2, 2, 0, 3, False, (2, 2, 1)),
    # I=4, K=4, s=3, p=2, ceil: [-2,2) [1,5) [4,8); padded end 6.
    (4, 4, 3, 2, 3, True, (4, 4, 2)),
    (4, 4, 3, 2, 3, False, (2, 3, 0)),
])
def test_avg_pool_divisors_by_hand(size, kernel, stride, padding, out, include,
                                   expected):
    assert _pool_spec.avg_pool_divisors(size, kernel, stride, padding, out,
                                   include) == expected


def test_avg_pool_divisors_by_counting():
    """Rows of [a, a+K) inside [-p, I+p) (with padding) or [0, I) (without)."""
    for size, kernel, stride, padding, _ in _pool_grid():
        for ceil_mode in (False, True):
            starts = pool_windows_by_search(size, kernel, stride, padding, 1,
                                            ceil_mode)
            for include in (False, True):
                lo, hi = (-padding, size + padding) if include else (0, size)
                expected = tuple(sum(lo <= a + j < hi for j in range(kernel))
                                 for a in starts)
                assert _pool_spec.avg_pool_divisors(size, kernel, stride, padding,
                                               len(starts), include) == expected


def test_pool_spec_divisor_and_shapes():
    """D is the outer product of the per-dim divisors, or the override."""
    wins = (_pool_spec.adaptive_windows(5, 3), _pool_spec.adaptive_windows(4, 2))
    spec = _pool_spec.PoolSpec(wins, ((2, 3, 2), (2, 2)))
    assert spec.in_spatial == (5, 4) and spec.out_spatial == (3, 2)
    assert spec.divisor().tolist() == [[4, 4], [6, 6], [4, 4]]
    override = _pool_spec.PoolSpec(wins, ((2, 3, 2), (2, 2)), -7)
    assert override.divisor().tolist() == [[-7, -7]] * 3
    same = _pool_spec.PoolSpec(wins, ((2, 3, 2), (2, 2)))
    assert hash(spec) == hash(same) and spec == same
    with pytest.raises(AttributeError):
        spec.divisor_override = 3


def test_windows_reach_input():
    """A dilated window that skips over a tiny input holds only padding."""
    ok = _pool_spec.pool_windows(5, 2, 1, 1, 2, 4)
    _pool_spec.check_windows_reach_input("f", (ok,), "settings")
    # I=1, K=2, p=1, d=2: taps at -1 and 1, neither is row 0.
    bad = _pool_spec.pool_windows(1, 2, 1, 1, 2, 1)
    with pytest.raises(ValueError, match=r"^f: window 0 of spatial dim 1 holds only "
                       r"padding .*`padding` or `dilation`"):
        _pool_spec.check_windows_reach_input("f", (ok, bad), "settings")


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_parse_bool_accepts(value):
    assert _args.parse_bool("f", "flag", value) is bool(value)


@pytest.mark.parametrize("value", [1, 0, None, "True", 1.0])
def test_parse_bool_rejects(value):
    with pytest.raises(TypeError, match=r"^f: `flag` must be a bool, got"):
        _args.parse_bool("f", "flag", value)


@pytest.mark.parametrize("stride,expected", [
    (None, (3, 2)), ((), (3, 2)), ([], (3, 2)), (1, (1, 1)), ((2, 1), (2, 1)),
])
def test_parse_pool_stride(stride, expected):
    """None (and torch's empty default) mean the kernel size."""
    assert _pool_spec.parse_pool_stride("f", stride, (3, 2)) == expected


@pytest.mark.parametrize("stride,exc", [(0, ValueError), ((1, 2, 3), ValueError),
                                        (1.5, TypeError), ("2", TypeError)])
def test_parse_pool_stride_rejects(stride, exc):
    with pytest.raises(exc, match=r"^f: `stride`"):
        _pool_spec.parse_pool_stride("f", stride, (3, 2))


def test_check_pool_padding():
    """2p <= K per dim: padding 1 fits kernel 2 and 3, not kernel 1."""
    _pool_spec.check_pool_padding("f", (1, 1), (2, 3))
    _pool_spec.check_pool_padding("f", (0, 2), (1, 4))
    with pytest.raises(ValueError, match=r"^f: `padding` must be at most half of "
                       r"`kernel_size`, got padding \(1, 2\) and kernel_size \(2, 3\)"):
        _pool_spec.check_pool_padding("f", (1, 2), (2, 3))


@pytest.mark.parametrize("value,expected", [(None, None), (3, 3), (-2, -2),
                                            (np.int64(5), 5)])
def test_parse_divisor_override(value, expected):
    assert _pool_spec.parse_divisor_override("f", value) == expected


@pytest.mark.parametrize("value,exc,message", [
    (0, ValueError, "must be non-zero, got 0"),
    (2.0, TypeError, "must be an int"),
    (True, TypeError, "must be an int, got bool"),
])
def test_parse_divisor_override_rejects(value, exc, message):
    with pytest.raises(exc, match=rf"^f: `divisor_override` {message}"):
        _pool_spec.parse_divisor_override("f", value)


def test_check_pool_output():
    _pool_spec.check_pool_output("f", (5, 5), (1, 3), "settings")
    with pytest.raises(ValueError, match=r"^f: the output would be empty: input "
                       r"\(5, 5\) with settings gives output size \(0, 3\)"):
        _pool_spec.check_pool_output("f", (5, 5), (0, 3), "settings")


@pytest.mark.parametrize("output_size,allow_none,expected", [
    (3, False, (3, 3)), ((4,), False, (4,)), ((2, 0), False, (2, 0)),
    ((None, 2), True, (7, 2)), ((None, None), True, (7, 5)), ([1, None], True, (1, 5)),
    (np.int64(2), True, (2, 2)),
])
def test_parse_output_size(output_size, allow_none, expected):
    """None keeps the input size (2-D and 3-D only, as torch)."""
    spatial = (7, 5) if len(expected) == 2 else (7,)
    assert _pool_spec.parse_output_size("f", output_size, spatial,
                                   allow_none=allow_none) == expected


@pytest.mark.parametrize("output_size,allow_none,exc", [
    (None, True, TypeError), (None, False, TypeError), ((None, 2), False, TypeError),
    ((1, 2, 3), True, ValueError), ((1, 2, 3), False, ValueError),
    (-1, True, ValueError), ((2, -1), True, ValueError), (1.5, True, TypeError),
    ((1.0, None), True, TypeError), ("2", False, TypeError),
], ids=str)
def test_parse_output_size_rejects(output_size, allow_none, exc):
    with pytest.raises(exc, match=r"^f: `output_size`"):
        _pool_spec.parse_output_size("f", output_size, (7, 5), allow_none=allow_none)
