"""Pure tests of ``jaxgrad/_spec.py``: shape arithmetic and argument parsing.

No arrays and no JAX: every expected value is either worked out by hand (the
arithmetic is in a comment next to it) or computed by an independent
reference (``numpy.pad``, or brute-force enumeration of window positions).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxgrad import _spec
from jaxgrad._spec import (conv_output_size, conv_transpose_output_size,
                           effective_kernel, int_tuple, leftover,
                           pad_source_index, parse_padding, same_padding)


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
