"""How a convolution runs: one module decides, one table holds the numbers.

A convolution of the family (``_conv._core``) has three bilinear maps, and each
can be computed in more than one way; every way is an explicit formula of the
same sums (``docs/derivations.md``):

  forward       "lax"            one ``lax.conv_general_dilated``
                "per_group"      G dense convolutions, concatenated on channels
                "taps"           grouped and depthwise: ΠK·C_in/G shifted
                                 multiply-adds fused into one loop (``_taps``)
                "im2col"         patches (ΠK strided copies of x) and one
                                 GEMM per group (dense: one GEMM)
  input grad    "transpose"      the textbook rule: one transposed convolution
                "transpose_per_group"   the same as G dense pieces
                "taps"           a sum over kernel taps (``_taps``)
  weight grad   "transpose"      the textbook rule: one convolution with batch
                                 and channels swapped (``batch_group_count``)
                "transpose_per_group"   the same as G dense pieces
                "transpose_swapped"     dense: one convolution of the
                                 cotangent (dilated by the stride) with the
                                 input as the window
                "taps"

:func:`forward_choice`, :func:`input_grad_choice` and
:func:`weight_grad_choice` each return one map's formulation with its reason,
from the backend, the shapes, the dtype, the :class:`ConvSpec` (which carries
the user's ``algorithm``) and the :class:`Placement` of the operands; the
kernels ask them at trace time, and :func:`plan` returns all three as one
record without running anything. Every number they use is a row of
:data:`THRESHOLDS`, and every rule that works around an XLA behaviour is a
row of :data:`WORKAROUNDS`, naming the behaviour and the jaxlib version it was
seen on.

``algorithm="autotune"`` replaces the rules by measurements: the first time a
configuration is seen, ``_autotune`` times each formulation that
:func:`candidates` lists for each map on this device, with the activations as
laid out and with their feature dim moved, and keeps the textbook one unless
another is at least 5% faster in both (in memory and in a JSON cache on
disk); the three choices then read "autotuned: <each candidate's times>".
Where timing a local piece would be
meaningless (operands on a mesh, inside ``shard_map``, an ``out_sharding``)
or impossible (an empty operand, a non-float dtype, a backend without a
device), the choice is "auto"'s, its reason prefixed "autotune falls back to
auto: <why>". This is the one case where :func:`plan` runs kernels: a
configuration not yet tuned is tuned when it is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._spec import ConvSpec, conv_output_shape, swapped_weight_grad_padding

# --------------------------------------------------------------------------
# The table. Each threshold: its value, what it decides, where it was measured.


@dataclasses.dataclass(frozen=True)
class Threshold:
    value: int
    decides: str
    measured: str


THRESHOLDS = {
    "taps_max_elements": Threshold(
        1 << 27,
        "largest taps buffer (N·C_in·ΠK·ΠO elements) for which 'auto' picks taps; "
        "above it the textbook rule needs no such buffer (depthwise gradients, "
        "which taps computes without one, are exempt: DEPTHWISE_UNBUFFERED; so "
        "are input gradients of one output channel per group, whose taps sums "
        "slabs w·ḡ and builds none: past the bound the rows decide them as "
        "within it; bench/results/contexts-cpu-2core-one-out-large.json: of 11 "
        "shapes past 2^27 the rows send 9 to taps, which took 0.03-0.35x the "
        "textbook rule's worse-context time)",
        "2-core Zen3 CPU, jaxlib 0.10.2 (docs/performance.md)"),
    "taps_max_taps": Threshold(
        128,
        "largest ΠK for which 'auto' computes a gradient as taps (but for 1x1 and "
        "tiled kernels, whose taps are a reshape); taps unrolls its per-tap "
        "slabs and products, so XLA's compile time grows with ΠK (about 25 ms a "
        "tap) while the run-time gain shrinks; the sweep's kernels were 1-7",
        "2-core Zen3 CPU, jaxlib 0.10.1, value-and-grad of Σy², compile / run, "
        "taps against the textbook rule: depthwise (4, 64, 32²) 7x7 1.2 / 12 "
        "against 0.23 s / 26 ms, 11x11 2.7 / 32 against 0.27 / 59, 15x15 4.5 / "
        "87 against 0.30 / 93, 21x21 9.3 / 176 against 0.42 / 195, 31x31 5.9 / "
        "547 against 0.78 / 434; 3-D (2, 8, 16³) dense 7³ 1.2 / 149 against "
        "0.47 / 151; 1-D one output, kernel 1024: 20 s / 1.7 ms against 0.08 / "
        "0.1; below the bound 3-D depthwise (2, 16, 16³) 5³ 3.7 s / 17 ms "
        "against 0.74 / 544 and 1-D depthwise kernel 127 1.1 / 50 against 0.33 "
        "/ 135. 3-D kernels, where XLA CPU's convolutions are slowest, are "
        "bounded by autotune_max_taps instead: depthwise (2, 16, 16³) 6³ 6.2 s "
        "/ 39 ms against 1.1 / 755, 7³ 10.2 / 523 against 1.3 / 1144 (dense "
        "6³ 0.9 / 117 against 0.34 / 101)"),
    "autotune_max_taps": Threshold(
        343,
        "largest ΠK for which autotuning times a gradient's taps formulation "
        "(1x1 and tiled kernels at any size), and for which 'auto' does for a "
        "3-D kernel: each candidate is compiled, and past 7³ taps' compile "
        "time alone exceeds any gain measured",
        "see taps_max_taps: 3-D depthwise 7³ compiled in 10-12 s and ran 2.2x "
        "faster than the textbook rule; 2-D depthwise 31x31 (961 taps) compiled "
        "in 5-38 s and ran 1.26x slower"),
    "dense_taps_min_out_channels": Threshold(
        64,
        "a dense (or split grouped) gradient with a kernel of several taps takes "
        "taps on CPU only with at least this many output channels per group "
        "(the GEMM's other dimension: its work per element of taps' buffer), "
        "unless the buffer is small (dense_taps_small_elements)",
        "fitted on the CPU sweeps bench/results/sweep-cpu-2core-fit*.json "
        "(python -m jaxgrad_bench.fit): 2-core Zen3, jaxlib 0.10.1. The refit "
        "sweeps (sweep-cpu-2core-refit*.json) would lower it to 16-32 on 6 "
        "points (taps 0.2-0.91x at 5, 1.3x at one); 8 layers of 16-48 output "
        "and 64-544 input channels timed for the check had taps' input "
        "gradient 1.2-5.3x slower at 7 (one held-out transposed conv 2.5x), so "
        "it stays"),
    "dense_taps_aligned_weight_min_out_channels": Threshold(
        256,
        "a dense weight gradient whose input and output channels are multiples "
        "of 8, with at least dense_taps_aligned_min_in_channels inputs, takes "
        "taps on CPU only with at least this many output channels: XLA's "
        "convolution is near its best on aligned channel counts (dense 3x3 "
        "64->64 at 28-56 px: taps 1.8-3.5x slower)",
        "fitted on the same sweep with its dense 3x3 grid "
        "(sweep-cpu-2core-fit3-dense-grid.json)"),
    "dense_taps_aligned_min_in_channels": Threshold(
        32,
        "fewest input channels for which the aligned weight-gradient row applies "
        "(the grid that showed it spans 32-256 channels; with 8-16 input channels "
        "XLA's weight gradient has a short batch and taps won, up to 2.4x); the "
        "row applies to 2-D kernels only, its evidence: 1-D aligned weight "
        "gradients with B <= 2^23 had taps 0.71-0.97x in the sweeps and 0.37x "
        "at one held-out point (sweep-cpu-2core-heldout3.json)",
        "same sweep: mean log regret 0.0590 -> 0.0571 over 598 points with this "
        "bound and the row kept to dense convolutions"),
    "dense_taps_max_elements": Threshold(
        1 << 23,
        "largest taps buffer (N·C_in·ΠK·P) of such a gradient that takes taps on "
        "CPU: beyond it the K copies no longer stay in cache and XLA's own "
        "convolution is faster (3x3 32->32 at 56x56, batch 16, 14M elements: taps "
        "3.1x slower for the input gradient, 4.8x for the weight gradient; "
        "64->64 batch 8: 99 against 43 ms for both)",
        "same sweep and fit"),
    "dense_taps_small_elements": Threshold(
        1 << 20,
        "a taps buffer this small takes taps whatever the channels (it stays in "
        "cache; XLA's convolution has the larger fixed cost)",
        "same sweep and fit"),
    "swapped_weight_max_out_channels": Threshold(
        24,
        "a dense weight gradient at stride 1, padded by at least ceil((K-1)·d/2) "
        "on each side (an odd kernel's 'same'), with at most this many output "
        "channels, at least swapped_weight_min_in_channels input channels and "
        "N·(N·C_in·ΠI) within swapped_weight_max_batch_input_product (or, in "
        "2-D, swapped_weight_large_batch_max_elements) runs on "
        "CPU as 'transpose_swapped' (the cotangent convolved with the input as "
        "the window: C_in, not C_out, output features of XLA's convolution; for "
        "a transposed convolution with few input channels, autodiff's own "
        "arrangement)",
        "2-core Zen3 CPU, jaxlib 0.10.1, medians of 9 (2026-12-05), core weight "
        "gradients timed directly (130 shapes: C_in 8-512, C_out 4-64, batch "
        "1-32, inputs to 19M elements, 1-D/2-D/3-D, 3x3/5x5, dilation 1-2, "
        "stride 1-2): C_out <= 24 with C_in >= 32 at stride 1, 'same'-padded, "
        "67 shapes with N·(N·C_in·ΠI) <= 18.9M: 0.10-0.98x the textbook "
        "rule's time (median 0.40; the two above 0.9 are 1-D), below taps' at "
        "all 67; C_out = 24 at 5 of them: 0.58-0.72x; C_out >= 32: 0.68-8.3x "
        "(median 1.11); stride 2: 0.98-21x; C_in = 8-16: 0.62-2.1x; with less "
        "padding than 'same' (the swapped convolution then pads its cotangent "
        "by more than (K-1)·d/2) 2.96-8.65x at 7 shapes, with more 0.07-0.27x "
        "at 3. Against: held-out run 9's 109 -> 24 at batch 22, 1.11x (0.86x "
        "with 112 input channels)"),
    "swapped_weight_min_in_channels": Threshold(
        32, "fewest input channels for swapped_weight_max_out_channels",
        "same measurements (C_in = 16 with 16 outputs: 0.99x; C_in = 8: mixed)"),
    "swapped_weight_thin_min_channel_ratio": Threshold(
        2,
        "below swapped_weight_min_in_channels, a dense 2-D weight gradient "
        "without kernel dilation that the textbook rule would compute "
        "(dense_taps_min_out_channels), with at least "
        "swapped_weight_thin_min_in_channels input channels and at least this "
        "many times as many input as output channels, runs swapped (the "
        "swapped row's other bounds apply: stride 1, 'same' pads or more, "
        "swapped_weight_max_out_channels, swapped_weight_max_batch_input_product)",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 (2026-12-07), autotune's protocol "
        "(both contexts; bench/results/contexts-cpu-2core-swapped-thin.json), "
        "70 shapes, C_in 8-24, C_out 4-16, batch 1-16, 28-112 px, 3x3/5x5, "
        "stride 1, 'same': with C_in >= 2 C_out (44 shapes) the swapped form "
        "took 0.08-0.91x the textbook rule's time in the worse context (median "
        "0.46); C_in = C_out (18) 0.97-1.28x; in between (C_in 24, C_out 16) "
        "0.17-1.73x, slower at batch 16. Measured against the textbook rule "
        "only, so it replaces only that rule's choice (dense_taps_min_out_"
        "channels), not the taps rows before it. Found by held-out run 21's "
        "worst point against jax.grad: a transposed convolution 8 -> 16, 5x5, "
        "batch 5 at 112 px, whose weight gradient (C_in 16, C_out 8) took "
        "22.6 ms against 10.9 swapped "
        "(bench/results/contexts-cpu-2core-heldout21-convT.json)"),
    "swapped_weight_thin_min_in_channels": Threshold(
        8, "fewest input channels for swapped_weight_thin_min_channel_ratio",
        "the same measurements (none below 8)"),
    "swapped_weight_max_batch_input_product": Threshold(
        5 << 22,
        "largest N·(N·C_in·ΠI), the batch times the input's elements, for "
        "swapped_weight_max_out_channels, but for swapped_weight_large_batch_"
        "max_elements (the swapped convolution contracts the "
        "batch as its input features: its cost grows with the batch beyond the "
        "input's size)",
        "same measurements, sorted by this product: every one of the 67 up to "
        "18.9M at 0.10-0.98x (batch 1 with 8.4M elements 0.30x, batch 2 with "
        "9.4M 0.80x, batch 8 with 2.4M 0.40-0.89x, batch 12-16 with up to "
        "0.5M 0.42-0.86x); the two at 33.6M 0.76x (batch 32) and 1.21x (batch "
        "4, 8.4M elements); above, 0.88-1.89x (batch 8 with 9.4M 1.33-1.89x, "
        "batch 16 with 4.7M 1.56x)"),
    "swapped_weight_large_batch_min_batch": Threshold(
        16,
        "smallest batch N for which swapped_weight_large_batch_max_elements "
        "lets a 2-D swapped weight gradient without kernel dilation, with at "
        "least swapped_weight_min_in_channels input channels, past "
        "swapped_weight_max_batch_input_product (the thin row's 8-31 input "
        "channels were not measured past it)",
        "the lower end of the batches drawn past the product bound (16-64; "
        "the script could draw 4-12 too, but none passed its filter): smaller "
        "batches there are not measured"),
    "swapped_weight_large_batch_max_elements": Threshold(
        1 << 22,
        "largest N·C_in·ΠI (the input's elements) for which a 2-D weight "
        "gradient without kernel dilation within the other swapped bounds "
        "(stride 1, 'same' pads or more, at most swapped_weight_max_out_"
        "channels outputs, at least swapped_weight_min_in_channels inputs) "
        "runs swapped with a batch of at least swapped_weight_large_batch_min_"
        "batch whatever N·(N·C_in·ΠI): the product bound was set on batches "
        "of up to 32, where the large products were large inputs",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 (2026-12-07), autotune's protocol, "
        "both contexts, 36 drawn weight gradients past the product bound "
        "(batch 16-64, C_in 32-528, C_out 4-24, 3x3/5x5 on 7-28 px; "
        "bench/results/contexts-cpu-2core-swapped-large-batch.json): at the "
        "31 within 2^22 elements the swapped arrangement took 0.25-1.15x the "
        "textbook rule's time as given and 0.18-1.29x channels-last (worse "
        "context 0.25-1.29x, median 0.69; above 1 in one context at 4, each "
        "0.30-0.70x in the other); above 2^22, 0.27-0.90x and 0.27-1.12x at 5 "
        "(the older data: batch 16 with 4.7M elements 1.56x). Network steps "
        "(1x1 conv, the layer, 1x1 conv; bench/results/networks-cpu-2core-"
        "swapped-large-batch.txt): step time new/old 0.58-0.97x at all 7, "
        "three of those 4 among them (0.80, 0.80, 0.97; the fourth, "
        "(48, 256, 10²) -> 16 5x5, not timed in a network). Larger batches, "
        "maps and kernels (7x7) within the bounds are not measured. Found by "
        "held-out run 32's worst point: a transposed convolution 16 -> 528 "
        "channels at batch 22, whose weight gradient ran 14.2 ms against "
        "autodiff's 8.4"),
    "dense_taps_small_max_batch": Threshold(
        3,
        "largest batch N for which dense_taps_small_elements applies: taps' "
        "gradients run one small GEMM per sample (the weight gradient then sums "
        "the N partial products), whose fixed cost grows with N while XLA's "
        "convolution takes the batch in one",
        "the 896 points of the fit sweeps, the other rows as fitted: mean log "
        "regret 0.0585 -> 0.0583, points over 1.2x autodiff 56 -> 49, over "
        "1.5x 16 -> 11 (2026-12-05; N <= 4: 0.0578, 52, 12; no bound: as "
        "before; the row dropped: 0.0655, 45, 11). Held-out misses it removes: "
        "8 -> 8 5x5 dilation 4 at batch 36 (2.6x jax.grad), 1-D 119 -> 8 at "
        "batch 11 (1.4x), 136 -> 52 3x3 on 9x9 at batch 4 (1.3x); a dense 8 -> 8 "
        "weight gradient at batch 36 timed at 3x3, 5x5 and dilations 1-4 had taps "
        "2.0-3.6x slower"),
    "dense_taps_small_thin_channels": Threshold(
        4,
        "most input channels for which dense_taps_small_elements applies at any "
        "batch (XLA's weight gradient then has a batch of C_in, its input "
        "gradient as few output features)",
        "the fit points as for dense_taps_small_max_batch: mean log regret "
        "0.0564 -> 0.0551 (0.0564: with taps_input_grad_one_out_max_terms, "
        "added between the two; the 6 points the swapped weight row takes, "
        "not timed in the sweeps, scored with the textbook rule's time), over "
        "1.2x autodiff 49 -> 50, over 1.5x 11 -> 12; "
        "at a batch above 3 with 4 input channels taps took 0.33-0.93x the "
        "textbook rule's time at 8 of 9 points (1.47x at one); MobileNetV2's stem (3 -> 32, "
        "3x3 stride 2, batch 16) training step 75 against 84-100 ms without it "
        "(models suite, 2026-12-05)"),
    "depthwise_weight_taps_max_elements": Threshold(
        1 << 23,
        "largest buffer (N·C·ΠK·P) of a 2-D depthwise weight gradient (and "
        "of a 1-D one above taps_max_elements: DEPTHWISE_UNBUFFERED) "
        "(one input and one output channel per group) with at most "
        "depthwise_weight_few_channels channels that takes taps on CPU; beyond "
        "it XLA's convolution, which does C times the depthwise work, is the "
        "faster with so few channels, from depthwise_weight_few_channels_min_batch "
        "samples on (2-D)",
        "CPU sweeps bench/results/sweep-cpu-2core-{fit,fit2,heldout,refit}.json "
        "(2-core Zen3, jaxlib 0.10.1): 8-16 channels, 2-D, B = 2e7-4e8, 4 of 4 "
        "points taps 1.3-2.9x slower; below 2^23 taps 0.5-1.0x except one "
        "(1.5x at B = 1.2e6). Not for a 1x1 kernel: its taps gradient is one "
        "product and sum over the input, no copies (2026-12-06, python -m "
        "jaxgrad_bench.contexts' measure on 8 2-D 1x1 shapes in this row, 8-16 "
        "channels, batch 2-64, B = 10.2-25.2M, stride 1-2: taps 0.10-0.74x "
        "the textbook rule's time as given, 0.11-0.89x channels-last; held-out "
        "run 14's (59, 8, 147²) transposed conv 0.39x / 0.56x; the 1-D part "
        "of the row, above 2^27, was not measured with a kernel of one tap)"),
    "depthwise_weight_few_channels": Threshold(
        16,
        "most channels for which depthwise_weight_taps_max_elements applies "
        "(at 24 channels the same sweeps had taps 0.34x at one point and "
        "1.8-1.9x at two)",
        "same sweeps"),
    "depthwise_weight_few_channels_min_batch": Threshold(
        2,
        "smallest batch for which the 2-D depthwise_weight_taps_max_elements "
        "row applies: with one sample, XLA's depthwise weight gradient (a "
        "convolution whose input features are the batch) was the slower",
        "2-core Zen3 CPU, jaxlib 0.10.1, 2026-12-05, weight gradients timed "
        "alone (medians of 10; 8-16 channels, 3x3-7x7, B = 7.2M-103M): batch 1, "
        "taps 0.37-0.73x the textbook rule's time at 6 of 6 (held-out run 9's "
        "(1, 16, 104, 104) 7x7: 0.38x, its worst regret); batch 2 0.75-1.30x "
        "at 5; batch 4-64 1.02-4.2x at 9"),
    "cpu_split_max_groups": Threshold(
        32,
        "largest G for which a grouped conv (1 < G < C_in) is split into G dense "
        "ones on CPU (each piece is one more convolution to compile)",
        "2-core Zen3 CPU, jaxlib 0.10.2: ResNeXt G=32 forward 16.2 -> 8.5 ms"),
    "taps_forward_max_group_channels": Threshold(
        8,
        "largest C_in/G for which a grouped or depthwise forward has a taps "
        "formulation (one fused multiply-add per tap and channel), which 'auto' "
        "picks on CPU",
        "2-core Zen3 CPU (shared), jaxlib 0.10.1, medians of 5, forward 3x3: "
        "G=32 C_in/G=4 (1,128,56,56) lax 6.2-12.1 ms, per group 7.5-14.1, taps "
        "0.73-0.79; G=8 C_in/G=8 (8,64,32,32) lax 4.3-7.7, taps 1.9-6.7 (the "
        "marginal end); a per-tap dot_general form was 2-60x slower than this"),
    "taps_forward_max_terms": Threshold(
        216,
        "largest ΠK·C_in/G (terms of the fused sum) for which the forward has a "
        "taps formulation; beyond it XLA no longer runs the sum as one loop",
        "same CPU: 3x3x3 C_in/G=8 (216 terms) lax 23.4 -> taps 2.8 ms, 5x5 "
        "C_in/G=8 (200) 7.8 -> 5.1; 7x7 C_in/G=8 (392) 12-25 -> 56-113 ms, 3x3 "
        "C_in/G=32 (288) 11.6 -> 606 ms"),
    "taps_forward_max_group_products": Threshold(
        384,
        "largest C_out/G·C_in/G·ΠK (products per output position and group) for "
        "which 'auto' runs a strided 2-D grouped forward with at least two input "
        "channels per group as taps on CPU; beyond it taps' fused sums, which "
        "share nothing across output channels, lost to the form the rules pick "
        "without taps (XLA's convolution, G of them, or im2col at batch 1)",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32, autotune's protocol, worse of the "
        "two contexts (2026-12-07, bench/results/contexts-cpu-2core-grouped-"
        "fit.json, 120 drawn grouped 2-D shapes, stride 1-4, dilation 1-2): "
        "strided, at most 384 products, 27 shapes: taps 0.08-1.39x the other "
        "form's time (median 0.51, 4 above 1); above 384, 21 shapes: "
        "0.66-10.4x (median 1.51, 16 above 1). Held out "
        "(contexts-cpu-2core-grouped-heldout.json, seed 3, 60 shapes): of "
        "the 9 forwards it moves off taps, 8 took 0.09-0.82x their old time, one "
        "2.66x"),
    "taps_forward_stride_one_max_group_products": Threshold(
        1536,
        "taps_forward_max_group_products for a stride-1 forward, where taps "
        "reads the input contiguously and kept its gain longer",
        "same data: stride 1, at most 1536 products, 14 shapes: taps "
        "0.11-3.79x (median 0.57; the two above 1 at batch 1, against im2col); "
        "2304 and 4704 products: 2.42x and 2.35x; none drawn between 1176 "
        "and 2304"),
    "grouped_strided_input_taps_max_elements": Threshold(
        1 << 25,
        "largest taps buffer B = N·C_in·ΠK·P for which a grouped 2-D input "
        "gradient at stride 3-4 takes taps on CPU (GROUPED_STRIDED_INPUT); "
        "beyond it the rows after that one decide",
        "the measured range: the 40 shapes that reached GROUPED_STRIDED_INPUT in "
        "bench/results/contexts-cpu-2core-grouped-{fit,heldout}.json had B up to "
        "2.2e7"),
    "grouped_strided_input_taps_few_out_max_elements": Threshold(
        1 << 23,
        "largest taps buffer B = N·C_in·ΠK·P for which a grouped 2-D input "
        "gradient at stride 2 without kernel dilation, with 2 to grouped_strided_"
        "input_few_out_max_group_out_channels output channels per group, at "
        "least grouped_strided_input_few_out_min_channel_ratio times as many "
        "input channels and at most ΠK / grouped_strided_input_few_out_min_"
        "taps_per_output outputs per group, takes the stride-2 row's taps on "
        "CPU; beyond it the textbook rule (one grouped convolution). Taps' "
        "GEMM contracts only C_out/G channels, so it is mostly the writing of "
        "its K-fold buffer, while XLA's grouped convolution produces C_in/G "
        "channels per group at good speed. Set where taps stops winning as "
        "given; no network step was timed below it",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32, autotune's protocol, both contexts "
        "(2026-12-07, bench/results/contexts-cpu-2core-grouped-s2-few-out-"
        "{fit,heldout}.json and the older grouped files): the 13 shapes the "
        "row moves (B = 10.9-66M) took 0.08-0.53x their old time "
        "channels-last and 0.18-1.00x as given. Below 2^23 (13 shapes "
        "within the other bounds) taps took 0.31-1.33x the textbook rule's "
        "time as given (above 1 at 2) and 0.45-2.02x channels-last (above 1 "
        "at 9): kept. In network steps (min_taps_per_output) the row took "
        "0.51-0.99x the old step time at the 8 it moves"),
    "grouped_strided_input_few_out_max_group_out_channels": Threshold(
        8,
        "most output channels per group (C_out/G) for grouped_strided_input_"
        "taps_few_out_max_elements: the range drawn (2-8)",
        "same data; one output channel per group is computed without a buffer "
        "(slabs), a different sum, and keeps taps"),
    "grouped_strided_input_few_out_min_taps_per_output": Threshold(
        4,
        "least ΠK / (C_out/G) for grouped_strided_input_taps_few_out_max_elements: "
        "taps' GEMM contracts C_out/G channels, the textbook rule's C_out/G·ΠK, "
        "so the more outputs per tap, the better taps fares (3x3: at most 2 "
        "outputs per group, 5x5: 6, 7x7: the 8 of the range)",
        "network steps (1x1 conv, the layer, 1x1 conv; the SGD step compiled "
        "with the row and without, interleaved in one process; 2026-12-07, "
        "bench/results/networks-cpu-2core-grouped-s2-few-out.txt): 3x3 with 6 "
        "outputs per group 1.17-1.31x slower with the row at 3 of 3 "
        "(channels-last timings alone had those maps at 0.25-0.71x), 3x3 with "
        "3-4 outputs 1.03 and 1.05x, 5x5 with 8 outputs 0.47x (16x16 map) "
        "and 1.03x (56x56); 3x3 with 2 outputs 0.89x and the 7 of 5x5-7x7 "
        "within this bound 0.51-0.99x. (Those steps ran the row before this "
        "bound: the textbook rule at every one of the 15 layers)"),
    "grouped_strided_input_few_out_min_channel_ratio": Threshold(
        8,
        "least C_in/C_out (input channels per group over output channels per "
        "group) for grouped_strided_input_taps_few_out_max_elements",
        "same data, B > 2^23, 2-8 outputs per group: at C_in/C_out >= 8 taps "
        "was slower than the textbook rule channels-last at all 19 shapes "
        "(1.41-13.2x), and as given at 16 (0.65-5.43x at all 19); at 0.5-6 it "
        "was faster in both contexts at 15 of 24 (to 0.08x) and slower in at "
        "least one at 9 (in both at 4; to 2.23x), 112x112 and larger maps "
        "among the faster"),
    "taps_forward_halves_min_terms": Threshold(
        1 << 20,
        "smallest N·C_out·ΠO·ΠK·C_in/G (multiply-adds of the sum) for which a "
        "differentiated taps forward runs on CPU in halves (_taps.forward: y "
        "written once instead of fused into each consumer); below it the "
        "repeated sums cost less than the loop",
        "2-core Zen3 CPU, jaxlib 0.10.1, value-and-grad of Σy² and through ReLU, "
        "14 drawn layers, interleaved (2026-12-06): halves lost only on a 1-D "
        "layer of 2.0e5 terms (0.28 -> 0.45 ms) and won from 1.8e6 terms up "
        "(3-D (2, 64, 8³) 3³: 1.77 -> 0.96 ms; (4, 192, 28²) 3x3, 5.4e6: "
        "7.0 -> 4.9 ms)"),
    "per_group_loop_min_positions": Threshold(
        1024,
        "smallest batch x spatial positions of the lhs for which a per-group "
        "weight gradient with at most per_group_loop_max_group_channels input "
        "channels per group runs as one convolution in a loop over the groups "
        "(XLA compiles one convolution instead of G); smaller pieces stay unrolled, "
        "where the loop's per-iteration cost dominates",
        "2-core Zen3 CPU, jaxlib 0.10.1, value-and-grad of ResNeXt G=32 layers: "
        "conv2 (1,128,56,56), 3136 positions: compile 1.30 -> 0.26 s, run 14.1 -> "
        "8.8 ms; conv5 (1,1024,7,7), 49 positions: run 2.1 -> 7.0 ms looped"),
    "per_group_loop_max_group_channels": Threshold(
        4,
        "most input channels per group for which a per-group weight gradient runs "
        "looped (per_group_loop_min_positions); with more, the looped convolution "
        "ran 2-16x slower than the unrolled pieces, and forwards and input "
        "gradients looped were 1.4-30x slower at every size measured",
        "2-core Zen3 CPU, jaxlib 0.10.1, 3x3 weight gradients, looped against "
        "unrolled, medians of 9 (2026-12-05): C_in/G <= 4 at 7 shapes of "
        "(1-16, 64-128, 14-112 px), G = 16-32: 0.15-2.0x, geometric mean 0.69x, "
        "compile 0.1-0.17 against 0.25-0.5 s; C_in/G = 8: 0.5-3.5x; "
        "C_in/G >= 16: 1.0-10x"),
    "cpu_split_min_group_channels": Threshold(
        16,
        "fewest channels per group (C_in/G for a forward, C_out/G for an input "
        "gradient) for which a grouped convolution is split into G dense ones "
        "on CPU; with fewer, XLA's one grouped convolution ran as fast (0.7-1.0x "
        "the pieces' time) and compiles one convolution instead of G",
        "2-core Zen3 CPU, jaxlib 0.10.1, 3x3, medians of 9-15 (2026-12-05): "
        "C/G = 4-8 at 10 shapes, G = 16-32: one convolution 0.52-1.05x the "
        "unrolled pieces (forward and input gradient), compile 0.1 against "
        "0.25-0.56 s; C/G = 16-64 at 12 shapes: pieces 1.1-2.4x faster"),
    "taps_input_grad_max_group_out_channels": Threshold(
        4,
        "a grouped input gradient (1 < G <= cpu_split_max_groups) with 2 to "
        "this many output channels per group and a buffer within "
        "dense_taps_max_elements takes taps on CPU: its pieces are convolutions "
        "of a few channels, which XLA runs far below its GEMM speed. Outside "
        "the measured range (C_out/G = 2-4, B = 3.6-7.2M) it lost: held-out "
        "(sweep-cpu-2core-heldout4.json) C_out/G = 2 at B = 14M, dilation 4: "
        "2.2x slower",
        "2-core Zen3 CPU, jaxlib 0.10.1, 3x3 (2026-12-05): C_out/G = 2-4 at 7 "
        "shapes of (1-16, 64-128, 14-112 px), G = 16-32: taps 1.3-4x faster than "
        "the best of one grouped convolution and G dense ones; C_out/G = 8: "
        "1.4x faster at batch 1, 1.6-2.9x slower at batch 2-8"),
    "taps_input_grad_max_group_in_channels": Threshold(
        8,
        "most input channels per group (C_in/G) for which the row of "
        "taps_input_grad_max_group_out_channels applies: its measured range "
        "(C_in/G = 2-8); with 12-24 it lost to the grouped convolution at "
        "every shape drawn",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32, autotune's protocol, worse of the two "
        "contexts (2026-12-07, bench/results/contexts-cpu-2core-grouped-{fit,heldout,"
        "stride-one-input}.json): of the 22 stride-1 shapes the row took, the 6 with "
        "12-24 input channels per group ran taps in 1.69-8.25x the one grouped "
        "convolution's time, which they now run (0.12-0.59x their old time); the "
        "16 with 2-8: taps 0.13-1.04x, median 0.48, one above 1"),
    "taps_input_grad_one_out_max_terms": Threshold(
        144,
        "a grouped input gradient (1 < G <= cpu_split_max_groups) with one "
        "output channel per group and at most this many terms C_in/G·ΠK per "
        "input element, at any B (it builds no buffer), takes taps on CPU: taps "
        "sums one elementwise slab w·ḡ per tap (no GEMM, no buffer), while "
        "XLA's convolution of a one-channel cotangent runs far below its GEMM "
        "speed",
        "2-core Zen3 CPU, jaxlib 0.10.1, medians of 40 (2026-12-05): C_in/G = "
        "3-16, G = 4-32, 3x3 and 1-D kernel 5, C_in/G·ΠK = 27-144, batch 1-16, "
        "11 shapes (one held-out, sweep-cpu-2core-heldout6.json, stride 4): "
        "taps 0.24-0.85x the textbook rule's time; C_in/G·ΠK = 288 (3x3, 32 "
        "per group): 1.27x, 400 (5x5, 16 per group): 2.4x"),
    "grouped_weight_taps_max_group_channels": Threshold(
        4,
        "a grouped weight gradient (1 < G <= cpu_split_max_groups, 1-D or 2-D) "
        "with 2 to this many input channels per group, at least "
        "grouped_weight_taps_min_group_out_channels output channels per group "
        "and a buffer within dense_taps_max_elements takes taps on CPU: the "
        "textbook rule's pieces are convolutions of a few channels, which XLA "
        "runs far below its GEMM speed, while taps' GEMM has C_out/G rows",
        "2-core Zen3 CPU, jaxlib 0.10.1, medians of 9 (2026-12-05), 14 shapes of "
        "(1-32, 12-128, 20-112 px or 1024 samples), G = 4-32, 3x3 and 5x5, "
        "stride 1-2, dilation 1-2, B = 1.3-7.2M: C_out/G = 6-32 at 9 shapes, taps "
        "0.28-0.98x the textbook pieces' time (median 0.58); held-out "
        "sweep-cpu-2core-heldout{3,5}.json had two more, C_in/G = 3-4 with "
        "C_out/G = 23-24: 0.14x"),
    "grouped_weight_taps_min_group_out_channels": Threshold(
        6,
        "fewest output channels per group for grouped_weight_taps_max_group_channels",
        "same measurements: C_out/G = 2-4 at 5 shapes, taps 1.17-5.6x slower "
        "(its GEMM is too short); 5 was not measured"),
    "grouped_weight_taps_few_samples_max_batch": Threshold(
        1,
        "a grouped 2-D weight gradient (1 < G <= cpu_split_max_groups) of at most "
        "this many samples, with at least grouped_weight_taps_few_samples_min_"
        "group_channels input and at most grouped_weight_taps_few_samples_max_"
        "group_out_channels output channels per group and a buffer within "
        "dense_taps_max_elements, takes taps on CPU: the textbook rule's G "
        "pieces are weight gradients of a few output channels summed over one "
        "sample, which XLA runs far below its GEMM speed, while taps' GEMM has "
        "C_in/G·ΠK columns",
        "2-core Zen3 CPU, jaxlib 0.10.1 (2026-12-07), worse of the two contexts: "
        "fitted on contexts-cpu-2core-grouped-wide-fit.json (60 drawn grouped "
        "layers, C_in/G = 12-96, C_out/G = 1-32, K 3-7, stride 1-4, batch 1-8) "
        "and the earlier grouped files, where it moves 17 weight gradients, taps "
        "0.15-0.45x the textbook pieces' time (median 0.26); held out, "
        "contexts-cpu-2core-grouped-wide-heldout.json (40 more): 10 moved, "
        "0.14-0.40x (median 0.25), ratios of worse-context times. Within the "
        "same channel and buffer bounds over the five 2-D grouped files, taps "
        "against the pieces (the larger of the two contexts' ratios): batch 1, "
        "0.14-0.77x at 40; batch 2, 0.29-0.91x at 17; batch 4, 0.50-2.32x, "
        "above 1 at 8 of 16; batch 8, 1.04-6.06x at all 16. Networks "
        "(networks-cpu-2core-grouped-few-samples.json, SGD steps of drawn "
        "ResNeXt-like networks): with the row at batch 2, of 4 two-sample "
        "networks it changed, 2 took 0.92-0.93x the step time, one 1.02-1.05x "
        "and one 1.29x (46.2 against 35.8 ms re-timed alone: its two moved maps "
        "were 0.57-0.97x alone); at batch 1, 2 of 14 one-sample networks "
        "changed: 0.85x (re-timed 0.61x) and 1.08x (re-timed 0.95-0.96x); "
        "10 built around channel-reducing grouped layers, four ways in one "
        "process with the final rules: 0.32-0.96x the step time under the "
        "rules before (median 0.60, networks-cpu-2core-grouped-few-outputs-"
        "four-ways.json)"),
    "grouped_weight_taps_few_samples_min_group_channels": Threshold(
        8,
        "fewest input channels per group for grouped_weight_taps_few_samples_"
        "max_batch",
        "same measurements: with 2-6 input and 2-4 output channels per group, "
        "one or two samples, taps took 0.33-2.18x the pieces' time, above 1 at "
        "5 of 8 (as grouped_weight_taps_min_group_out_channels found); 7 was "
        "not measured"),
    "grouped_weight_taps_few_samples_max_group_out_channels": Threshold(
        16,
        "most output channels per group for grouped_weight_taps_few_samples_"
        "max_batch",
        "same measurements: at 32 output channels per group, one sample, 12-64 "
        "input channels per group, taps took 0.69-2.43x the pieces' time, above "
        "1 at 8 of 11; 17-31 were not measured"),
    "im2col_forward_max_batch": Threshold(
        1,
        "largest batch for which a grouped forward with no fused taps "
        "formulation (beyond taps_forward_max_group_channels, "
        "taps_forward_max_terms or the grouped products bounds) runs on CPU as "
        "patches and one GEMM per group ('im2col'); it compiles one product "
        "instead of a grouped convolution or G. Kept to the measured range: G "
        "<= cpu_split_max_groups, more than one input channel per group, "
        "patches within dense_taps_max_elements",
        "2-core Zen3 CPU, jaxlib 0.10.1, 3x3, C_in/G = 16-64, G = 8-32, medians of "
        "15 (2026-12-05): batch 1 at 7-28 px, 5 shapes: 0.50-1.38x the time of the "
        "best convolution form (ResNeXt conv5 (1,1024,7,7): 0.48 against 0.72 ms), "
        "compile 0.07 against 0.23-0.74 s; batch 2-8: 0.4-1.8x, mixed. Rechecked "
        "2026-12-07: timed alone (contexts-cpu-2core-grouped-{fit,heldout,"
        "stride-one-input,wide-fit,wide-heldout}.json, worse-context times), G "
        "dense pieces (16-96 inputs per group) took 0.20-0.91x im2col's time at "
        "42 of 43 one-sample 2-D shapes, 1.10x at one, and 0.20-0.80x at 15 of "
        "the 16 with 1-4 outputs per group. In networks they did not: one-sample "
        "SGD steps with those forwards as pieces took 0.99-1.17x the time with "
        "im2col in 10 ResNeXt-like networks of 16 inputs and outputs per group "
        "(median 1.04, networks-cpu-2core-grouped-one-sample-forward.json), and "
        "0.79-1.27x, slower in 7 of 10, in 10 networks of channel-reducing "
        "grouped layers with 1-4 outputs per group (networks-cpu-2core-grouped-"
        "few-outputs-forward.json; 0.83-1.23x, median 1.03, with the few-"
        "samples weight row in the four-way run of the same networks); so "
        "im2col stays"),
    "dense_im2col_forward_max_positions": Threshold(
        9,
        "most output positions (ΠO) for which a dense forward (G = 1) of "
        "PyTorch's geometry runs on CPU as patches and one GEMM ('im2col'), with "
        "patches (N·C_in·ΠK·ΠO) within dense_taps_max_elements: XLA CPU's "
        "convolution is pathologically slow when the output is smaller than the "
        "kernel, and more so with many channels",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32, medians of 5 (2026-12-06): 3x3/5x5/7x7, "
        "stride 1-2, 64-512 channels, batch 1 and 16, outputs of 1-9 positions, 33 "
        "shapes: im2col 1.1-117x faster in 31 (ResNet-18 layer4 at 32 px, "
        "(16, 512, 2, 2) 3x3: 136 against 2-3 ms; 5x5 (16, 512, 4, 4) stride 2: "
        "633 against 5.4 ms), 0.63 and 0.80x in two under 0.35 ms; at 16 "
        "positions with batch 32, 0.51-1.19x"),
    "dense_im2col_forward_one_sample_max_positions": Threshold(
        64,
        "most output positions for which a dense forward of one sample runs on "
        "CPU as im2col (same conditions as dense_im2col_forward_max_positions)",
        "same sweeps: batch 1 with 16-64 positions, 3x3 at 4-8 px and 3x3-7x7 at "
        "6-12 px, 64-512 channels, 25 shapes: 0.89-8.0x faster (two below 1, "
        "0.89 and 0.95x); batch 8-16 at 25-64 positions 0.42-1.8x and batch 32 "
        "0.74-1.04x, mixed, so neither takes it"),
    "dense_taps_input_grad_max_positions": Threshold(
        9,
        "most input positions (ΠI) for which a dense input gradient of a plain "
        "convolution (stride, dilation and input dilation 1), or of a 2-D "
        "stride-1 one with kernel dilation, that the rows above "
        "leave to the last one ('cpu measured') takes taps on CPU; at more it "
        "keeps the textbook rule, itself a stride-1 convolution with ΠI outputs, "
        "which XLA CPU runs slowly only when that output is smaller than the "
        "kernel (as for the forward: dense_im2col_forward_max_positions): a "
        "2-D input smaller than the kernel's taps (not its dilated extent) in "
        "some dim takes taps at any size within taps_max_elements, dense only "
        "(KERNEL_OVER_INPUT)",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 (2026-12-06): inside the models "
        "suite's training steps, interleaved, the textbook rule in place of taps "
        "for these input gradients at one map size at a time: ResNet-18 (batch "
        "16) 2x2 maps 547 against 156 ms, 4x4 160 against 156, 8x8 150, 16x16 "
        "148; U-Net (batch 4) 32x32 109 against 122 ms, 16x16 118; alone, with "
        "x and g given channels-last as between two XLA convolutions, taps took "
        "1.2-3.5x the textbook rule's time at 4x4-64x64 and 0.05x at 2x2 (given "
        "in NCHW, as the sweeps that fitted the rows above time them, 0.78-1.22x). "
        "Dilated 2-D (2026-12-06, bench/results/models-cpu-2core-dilated-input-row.json): "
        "SGD steps of a DeepLab-style head (two 3x3 dilation-2 convolutions, "
        "then ASPP), this row against taps for its dilated input gradients "
        "(jax.grad in brackets): N=2, 64 channels, 33 px, rates 6/12/18 34.3 "
        "against 76.9 ms (37.3); N=4, 24 px, rates 2/4/8 39.4 against 74.3 "
        "(42.1); N=1, 128 channels 78.2 against 86.1 (81.9); N=8, 32 "
        "channels, 17 px 14.0 against 15.7 (13.1). Alone, at the 26 dilated "
        "shapes of contexts-cpu-2core-dilated-{large,small}-maps.json that "
        "the row moves, taps took 0.56-6.0x the textbook rule's time "
        "channels-last, 22 above 1 (0.64-3.52x with NCHW arguments). The "
        "bench's two DeepLab cases (one sample, one layer, NCHW arguments) "
        "lost: backward 0.892x -> 0.962x and 0.886x -> 0.975x jax.grad "
        "(bench/results/cpu-2core-deeplab-dilated-input-row-*.md). 1-D dilated "
        "input gradients keep taps: a "
        "TCN's steps (k=3, dilation 1-128) took the same time either way "
        "(within 2%)"),
    "dense_taps_input_grad_one_sample_max_positions": Threshold(
        64,
        "the same bound for one sample (N = 1), as the forward's "
        "dense_im2col_forward_one_sample_max_positions",
        "not measured for input gradients: the forward's batch-1 measurements "
        "(XLA's convolution 0.89-8.0x the GEMM's time at 16-64 outputs)"),
    "one_d_taps_input_grad_min_channel_ratio": Threshold(
        8,
        "a dense 1-D input gradient of a plain convolution (stride and dilation "
        "1) of more than one sample, with at most "
        "one_d_taps_input_grad_max_in_channels input channels, that the rows "
        "before leave to dense_taps_input_grad_max_positions takes taps on CPU "
        "at any number of positions when its output channels are at least this "
        "many times its input channels: the textbook rule is then a 1-D "
        "convolution with few output features over many input features, which "
        "XLA CPU runs slowly",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 (2026-12-06): python -m "
        "jaxgrad_bench.contexts --ndim 1 --seed 1|2|3 (bench/results/"
        "contexts-cpu-2core-1d-seed*.json: 120 draws, 119 distinct 1-D shapes, N "
        "1-64, C_in 1-64, C_out 16-1024, K 2-11, 16-2000 positions; each map "
        "timed as autotune times it, x and g as given (NCW) and with their "
        "feature axis moved last). At the 12 shapes with C_out >= 8 C_in and "
        "C_in <= 12 that the positions row sent to the textbook rule (N 4-64), "
        "taps took 0.17-0.70x its time as given (median 0.375) and 0.29-0.90x "
        "moved (median 0.63); with C_in = 16-32 (17 draws) 0.42-0.89x given but "
        "0.45-1.53x moved, 4 above 1. Not measured, so not covered: one sample "
        "(dense_taps_input_grad_one_sample_max_positions) and fewer than "
        "dense_taps_min_out_channels output channels. Held-out run 12's worst "
        "point, x=(31, 8, 61) w=(284, 8, 5), had a regret of 1.64 with the "
        "textbook rule"),
    "strided_weight_taps_max_out_channels": Threshold(
        16,
        "a dense weight gradient strided in every spatial dim (stride >= 2, "
        "kernel dilation 1) with at most this many output channels, at most "
        "strided_weight_taps_max_in_channels input channels, at most "
        "strided_weight_taps_max_batch samples and a buffer within "
        "dense_taps_max_elements takes taps on CPU, ahead of the aligned and "
        "few-output rows (XLA's weight gradient of a strided convolution "
        "then has few output features and a short contraction over the batch; "
        "taps is one GEMM over N·P; the swapped row covers stride 1)",
        "2-core Zen3 CPU, jaxlib 0.10.1, 2026-12-06, autotune's protocol in "
        "both layouts (python -m jaxgrad_bench.contexts --family dense-strided "
        "--ndim 2 --seed 1 and 56 targeted draws, "
        "bench/results/contexts-cpu-2core-strided2d-seed1.json and "
        "contexts-cpu-2core-strided-fewout.json): of the shapes the "
        "row moves to taps (stride 2-3, K 3-7, 4-16 outputs, 16-256 inputs), "
        "25 at batch <= 4 (1-D and 2-D): taps 0.17-1.15x the textbook rule's "
        "time as given (median 0.38), 0.17-1.39x channels-last (median 0.49), "
        "one above 1 (4·48 at 80² px, 5x5); 10 at batch 6-16: 0.47-5.09x, 9 "
        "above 1 in one layout or both; with 24 outputs at batch <= 4 taps "
        "lost at 4 of 5 (1.08-1.43x as given, 1.20-1.80x channels-last). At "
        "stride 4 "
        "(contexts-cpu-2core-strided-checks.json) 6 more shapes: 0.21-1.01x "
        "as given, 0.25-0.85x channels-last. Held-out misses it "
        "removes: run 15's (1, 80, 62²) -> 8, 3x3 stride 2 (taps 0.30x; regret "
        "3.2) and run 8's 72 -> 8, 7x7 stride 2 at batch 1 (regret 2.8-3.0)"),
    "strided_weight_taps_three_sample_max_out_channels": Threshold(
        32,
        "at batch 3 exactly, strided_weight_taps_max_out_channels' bound: XLA "
        "CPU's weight-gradient convolution, which contracts the batch as its "
        "input features, is on a slow path with 3 of them and 17-32 output "
        "features (three such layers ran 6.8-13.1x faster at batch 4)",
        "2-core Zen3 CPU, jaxlib 0.10.1, 2026-12-06, autotune's protocol "
        "(bench/results/contexts-cpu-2core-strided-batch3.json and the strided "
        "files above): 11 shapes at stride 2, batch 3, 24-32 outputs, 4-128 "
        "inputs: taps 0.06-0.79x the textbook rule's time as given, "
        "0.07-0.70x channels-last (the textbook rule 18-45 ms at 7 of them; "
        "the 3 also measured at batch 4 took 2.5-3.8 ms there); with 48-64 "
        "outputs "
        "at batch 3 taps was slower at 6 of 6 in one layout or both "
        "(0.83-2.15x as given); at batch 4 with 24-32 outputs at 6 of 6 "
        "(1.01-5.97x). Held-out run 16's worst point, (3, 24, 152²) -> 32 "
        "stride 2, is one of them (taps 0.44x). All 2-D: the 1-D layers of "
        "this class follow the 16-output bound's 1-D evidence only)"),
    "strided_weight_taps_max_in_channels": Threshold(
        512, "most input channels for strided_weight_taps_max_out_channels",
        "whole backward passes (jax.vjp of one conv2d, 3x3 stride 2, medians "
        "of 25 interleaved, 2026-12-06): the row against the textbook weight "
        "gradient, 384 -> 16 at batch 1 4.5 against 12.0 ms, 512 -> 8 at "
        "batch 2 5.2 against 11.0 ms, 192 -> 16 at batch 3 7.8 against 13.9 "
        "ms; but held-out run 7's (3, 672, 32²) -> 8 21.3 against 13.2 ms "
        "(bench/results/contexts-cpu-2core-strided-checks.json; timed alone, "
        "autotune's protocol, that weight gradient had taps 0.67x: the two "
        "taps gradients together are the slower)"),
    "strided_weight_taps_max_batch": Threshold(
        4, "largest batch for strided_weight_taps_max_out_channels",
        "the same measurements (batch 6: 0.47x / 0.83x at one shape; batch "
        "8-16: 0.86-5.09x, 9 of 9 above 1 in one layout or both)"),
    "strided_weight_taps_few_samples_max_batch": Threshold(
        7,
        "1-D and 2-D: at batches from strided_weight_taps_max_batch + 1 to this "
        "one, a weight gradient that strided_weight_taps_max_out_channels' row "
        "would take but for its batch bound (at most 16 outputs; 1-D: "
        "strided_weight_taps_few_samples_one_d_max_out_channels) takes taps "
        "within B <= strided_weight_taps_few_samples_max_elements and, in 2-D, "
        "at most strided_weight_taps_few_samples_max_in_channels input channels "
        "(1-D: strided_weight_taps_max_in_channels). XLA CPU's weight-gradient "
        "convolution contracts the batch as its input features; at batch 8 and "
        "10 it won at nearly every shape measured, at 5-7 it lost (XLA CPU's "
        "YNNPACK convolutions are slow at particular batch counts per layer, "
        "not at every count below 8: docs/performance.md, 'slow batch sizes')",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 only (2026-12-07), autotune's "
        "protocol in both layouts (bench/results/contexts-cpu-2core-strided-"
        "batch5-12.json, 36 draws at batch 5-12, 4-16 outputs, 3-128 inputs, "
        "stride 2-3, K 3-7, 1-D and 2-D, B <= 2^23, with the committed "
        "strided files). Ratios are taps over the textbook rule, the larger of "
        "the two layouts' ratios: of the 21 gradients at batch 5-7 the row "
        "takes, 19 moved from the textbook rule, at 0.51-1.03x (median 0.69; 2 "
        "were taps already by dense_taps_small_elements); of the 4 it leaves, "
        "taps took 0.89-0.92x at 3 and 2.05x at (7, 96, 44^2) -> 12, 5x5 "
        "stride 2. With at most 16 outputs and the textbook rule: at batch 8 "
        "taps was slower at 24 of 28 shapes, at batch 10 at 3 of 3, at batch 12 "
        "at 2 of 6 (mixed, so not covered). SGD steps of 30 drawn networks (a "
        "3x3 stem, the strided layer, a head; batch 5-7, 1-D layers of at most "
        "128 inputs), row on against off and a second compile of row-on, "
        "medians of 15 interleaved (networks-cpu-2core-strided-batch5-7.json, "
        "script inside): the 21 steps the row as shipped changes took "
        "0.67-1.07x (median 0.90). Held-out run 26's (5, 8, 92^2) -> 8, 3x3 "
        "stride 2, had a regret of 1.85 with the textbook rule, a confirmed 1.09 "
        "with the row, control 1.04 (sweep-cpu-2core-heldout26-reconfirm.md)"),
    "strided_weight_taps_few_samples_one_d_max_out_channels": Threshold(
        32,
        "in 1-D, strided_weight_taps_few_samples_max_batch's output bound (16 "
        "in 2-D)",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 (2026-12-07): at batch 5-7 with "
        "20-32 outputs (bench/results/contexts-cpu-2core-strided-batch5-7-"
        "out20-32.json, 24 draws, script inside), taps took 0.74-0.98x the "
        "textbook rule's time (the larger of the two layouts' ratios) at the 6 "
        "1-D draws it moves (5 shapes, 8-64 inputs; the other 5 1-D draws were "
        "taps already), but in 2-D it was slower at 9 of 13 (1.09-3.26x; all 8 "
        "at batch 6-7). Not measured: 17-19 outputs, more than 96 inputs, B "
        "above 3.4M (the row's 1-D bounds apply there). SGD steps of 14 drawn "
        "1-D networks with such a layer "
        "(networks-cpu-2core-strided-batch5-7-one-d.json): the 13 steps it "
        "changes took 0.71-1.05x (median 0.93; the 1.05x with a control of "
        "0.99x). Held-out run 28's worst point, (5, 8, 107^2) -> 32, 3x3 "
        "stride 2, is 2-D and not covered (confirmed regret 1.73)"),
    "strided_weight_taps_few_samples_max_in_channels": Threshold(
        48, "most input channels of a 2-D layer for "
        "strided_weight_taps_few_samples_max_batch",
        "the same network steps: 2-D layers of 8-48 inputs took 0.67-1.04x, a "
        "3x3 stride-2 layer of 64 inputs 0.99x, and two 5x5 stride-2 layers of "
        "64 and 128 inputs 1.41x and 1.58x (the draws with a bound of 64 and "
        "with none), although alone their weight gradients took 0.56-0.99x as "
        "taps (scratch; docs/performance.md: scheduling)"),
    "strided_weight_taps_few_samples_max_elements": Threshold(
        1 << 22, "largest buffer for strided_weight_taps_few_samples_max_batch",
        "the networks were drawn within 2^22. In the contexts data the one "
        "shape above it inside the other bounds, (7, 16, 92^2) -> 16, 7x7 "
        "stride 3 at 5.3M, won (0.89x); the loss at 8.1M has 96 inputs"),
    "one_sample_weight_taps_max_in_channels": Threshold(
        16,
        "a dense 2-D weight gradient at stride 1 of one sample with at most "
        "this many input channels takes taps on CPU within "
        "dense_taps_max_elements, ahead of dense_taps_min_out_channels (XLA's "
        "weight-gradient convolution then contracts a batch of one as its "
        "input features; taps is one GEMM over the positions)",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 (2026-12-06), autotune's protocol "
        "in both layouts (bench/results/contexts-cpu-2core-one-sample-thin.json: "
        "40 draws, N 1-2, C_in 1-32, C_out 4-63, K 3-7, 28-224 px, dilation "
        "1-2, and 30 listed layers; contexts-cpu-2core-thin-channels.json). At "
        "the 13 shapes the row moves (from dense_taps_min_out_channels; held-out "
        "run 20's worst layer, (1, 4, 171²) -> 16, 5x5, is one) taps took "
        "0.18-0.93x the textbook rule's time as given and 0.17-0.89x "
        "channels-last. Not beyond: with 24, 32 or 64 outputs XLA's convolution "
        "is fast (taps 0.91-2.11x as given, 1.08-4.71x channels-last at 8 "
        "shapes; (1, 3, 256²) -> 32, U-Net's first layer, 7.1 against 3.3 ms), "
        "at batch 2 0.37-2.41x, with 17-32 inputs 0.19-2.37x, at stride 2-3 "
        "(6 layers) 0.62-1.44x as given and 0.97-1.65x channels-last. SGD "
        "steps at batch 1, medians of 15 interleaved "
        "(models-cpu-2core-one-sample-thin.json): FSRCNN (12 -> 12 3x3 "
        "layers) at 128 px 46.1 against 54.1 ms, at 256 px 242.6 against "
        "283.1 (jax.grad 91.4, 391.4); a U-Net of width 16 at 192 px 119.0 "
        "against 138.5, at 256 px 235.4 against 236.8"),
    "one_sample_weight_taps_max_out_channels": Threshold(
        16, "most output channels for one_sample_weight_taps_max_in_channels",
        "the same measurements (with 4-16 outputs taps won at 13 of 13; with 24, "
        "32 and 64 it was slower in one layout or both at 8 of 8; 40-48 mixed)"),
    "strided_input_grad_textbook_min_channels": Threshold(
        64,
        "a dense 2-D input gradient at stride 2 (kernel dilation 1) with at "
        "least this many input and output channels, an input of at most "
        "strided_input_grad_textbook_max_positions positions and more than "
        "twice the kernel in every dim keeps the textbook rule on CPU, ahead "
        "of the stride-2 row's taps: inside networks XLA keeps such layers "
        "channels-last, where taps' product (channel-major columns) and its "
        "sum by phases lose to XLA's transposed convolution; at larger maps "
        "taps wins as given, and at inputs of at most twice the kernel XLA's "
        "transposed convolution has a slow path (taps 9-52x faster)",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32 (2026-12-06). SGD steps, medians "
        "of 15 interleaved, this row against the stride-2 row's taps "
        "(bench/results/models-cpu-2core-strided-input-row.json), ms: DCGAN "
        "discriminators (4x4, 3x3, 5x5 stride 2) at batch 16, 64 px, 72.4 "
        "against 81.7 (jax.grad 77.7), 38.1 against 41.4 (38.6), 119.4 "
        "against 124.0; All-CNN-C at 32 px, batch 32, 348.6 against 365.1 "
        "(345.2); DCGAN generators (the transposed convolution's forward is "
        "this map) 63.9 against 71.9; 10 of 14 steps faster by 4-11%, "
        "ResNet-18's three within 0.3%, a DCGAN discriminator at batch 64 2% "
        "slower (320.7 against 314.1). "
        "Alone, autotune's protocol (contexts-cpu-2core-strided-input-*.json, "
        "contexts-cpu-2core-strided2d-seed1.json, -strided-batch3.json): at the "
        "52 shapes the row covers taps took 0.61-1.50x the textbook rule's time "
        "as given (NCHW; geometric mean 1.00) and 0.58-2.05x channels-last (41 "
        "above 1, geometric mean 1.18); at the 21 with more than 1024 input "
        "positions (36-80 px) 0.32-1.15x as given (geometric mean 0.71; "
        "channels-last 0.50-2.23x, 1.13), kept on taps by the NCHW figures, "
        "no network step having measured them; at "
        "the 17 with an input of at most twice the kernel 0.02-1.45x, below "
        "0.12x at 4 (XLA's slow path)"),
    "strided_input_grad_textbook_max_positions": Threshold(
        1024, "most input positions (ΠI) for strided_input_grad_textbook_min_channels",
        "the same measurements (32 x 32 inputs and smaller)"),
    "one_d_taps_input_grad_max_in_channels": Threshold(
        12, "most input channels for one_d_taps_input_grad_min_channel_ratio",
        "the same measurements (C_in = 16 at C_out = 8 C_in, batch 16 and 31: "
        "1.42-1.53x moved)"),
    "strided_input_grad_taps_min_out_channels": Threshold(
        12,
        "a dense 2-D input gradient at stride 3 or 4 in each dim (kernel "
        "dilation 1) whose cotangent is smaller than the kernel in every dim "
        "(O < K, few output positions) takes taps on CPU with at least this "
        "many output channels and a buffer within "
        "strided_input_grad_taps_max_elements, ahead of "
        "dense_taps_min_out_channels and dense_taps_max_elements: XLA's "
        "transposed convolution of a zero-inserted cotangent smaller than its "
        "kernel runs far below GEMM speed (as at KERNEL_OVER_INPUT), taps sums "
        "by phases. A transposed convolution's forward at stride 3-4 whose "
        "input is smaller than the kernel is this map and follows, its input "
        "channels in the place of the output channels (only convolutions' "
        "input gradients were timed; square strides, 3x3-7x7 kernels)",
        "2-core Zen3 CPU, jaxlib 0.10.1, f32, autotune's protocol, ratios of "
        "worse-context times (2026-12-07; python -m jaxgrad_bench.contexts "
        "--family dense-stride34). Fit (contexts-cpu-2core-dense-stride34-fit"
        ".json and -fit2.json, 210 shapes): the 16 input gradients it moves "
        "took 0.09-0.52x their old time (median 0.22), e.g. x (28, 384, 14, "
        "14), 128 outputs, 7x7 stride 4: 18.8 against 217 ms; held out "
        "(-heldout.json, 120 shapes, seed 2, timed after the row was written): "
        "the 12 it moves 0.10-0.84x (median 0.26). At the bound "
        "(-bounds.json): 14 outputs 0.27x and 0.49x (held-out run 24's (59, "
        "275, 8, 8) 3x3 stride 4), 12 outputs 0.20-0.94x at 12 of 13 shapes "
        "and 1.29x at x (32, 192, 14, 14) 7x7 stride 4; 10 outputs 0.32x and "
        "1.24x; 8 outputs 0.90-1.50x, above 1 at 3 of the 5 that the old rules "
        "sent to the textbook rule (all files); 4 outputs above 1 at 5 of 8 "
        "such shapes. With O >= K "
        "the textbook rule in place of the taps that later rows give took "
        "0.61-2.08x taps' time (median 1.06, slower at 89 of 154, fit and 1-D "
        "files), so those keep their rows. In SGD steps of drawn small CNNs "
        "with such a layer (networks-cpu-2core-dense-stride34.json, its script inside; "
        "row on and off and a second copy of the row-on program, compiled in "
        "one process, interleaved): the 14 steps whose plan it changed took "
        "0.30-0.94x their old time (median 0.52; the copy within 0.08 of the "
        "row's ratio), 0.32-1.10x jax.grad's (1.10x: batch 32, 3x3 maps, a "
        "3x3 kernel at stride 4, 1.18x without the row); the other 12 ran the "
        "same program both ways (taps already: 64 or more outputs, a tiled "
        "3x3 at stride 3, or a small buffer at batch 2)"),
    "strided_input_grad_taps_max_elements": Threshold(
        1 << 24,
        "largest taps buffer N·C_in·ΠK·P for strided_input_grad_taps_min_out_channels",
        "the same measurements: the family draws buffers up to twice "
        "dense_taps_max_elements; the largest moved, 10.0M elements (held "
        "out: x (64, 128, 14, 14), 24 outputs, 7x7 stride 3), took 0.52x; "
        "9.6M in the fit data, 0.22x"),
    "autotune_max_pieces": Threshold(
        32,
        "largest G for which autotuning also times the per-group forms (each of "
        "the G pieces is one more convolution to compile)",
        "compile time on the 2-core Zen3 CPU, jaxlib 0.10.2: a G=32 "
        "value-and-grad 0.95 s split against 0.3 s whole (docs/performance.md)"),
}
TAPS_MAX_ELEMENTS = THRESHOLDS["taps_max_elements"].value


@dataclasses.dataclass(frozen=True)
class Workaround:
    behaviour: str
    jaxlib: str
    remedy: str


WORKAROUNDS = {
    "grouped_batch_all_gather": Workaround(
        "the SPMD partitioner all-gathers the whole batch of a conv with "
        "1 < feature_group_count < C_in (autodiff: one all-gather in the forward, "
        "one in the input gradient)",
        "0.10.2",
        "where the batch may be split, the grouped conv runs as G dense ones"),
    "multi_axis_batch_group": Workaround(
        "a batch_group_count convolution is computed wrong on a mesh of several "
        "axes when the batch is split over some of them only",
        "0.10.2",
        "on such meshes the grouped weight gradient runs as G dense ones"),
    "cpu_slow_grouped": Workaround(
        "CPU runs a conv with 1 < G < C_in at about the dense cost, and a grouped "
        "weight gradient (batch_group_count) at G times it",
        "0.10.2",
        "split into G dense convs on CPU up to cpu_split_max_groups, with at least "
        "cpu_split_min_group_channels channels per group (not under a "
        "mesh, where G all-reduces would replace one)"),
    "cpu_f64_depthwise_nan_leak": Workaround(
        "CPU runs a float64 depthwise conv as a dense one with a zero-masked "
        "kernel, so 0·NaN carries one channel's NaN into every channel",
        "0.10.2",
        "float64 depthwise convolutions on CPU run per group, or as taps (the "
        "forward's taps formulation keeps each channel's NaN in its channel)"),
    "cpu_f64_concurrent_conv_crash": Workaround(
        "CPU may run the unrolled float64 convolutions of a per-group split at "
        "once and die of SIGSEGV (jaxlib 0.10.1: 24-64 single-channel 3x3 "
        "convolutions of (4, 1, 32, 32) whose results are concatenated or "
        "summed, jitted alone; also float32 operands with float64 results; not "
        "with --xla_cpu_enable_concurrency_optimized_scheduler=false, not in "
        "float32 throughout)",
        "0.10.1",
        "float64 per-group splits on CPU (float64 operands, or float64 sums by "
        "preferred_element_type) of unplaced operands run as one convolution "
        "in a lax.scan over the groups, one piece after another"),
    "cpu_slow_grouped_forward": Workaround(
        "CPU runs the forward of a depthwise or grouped convolution 10-100x "
        "slower than the same sum written as shifted multiply-adds (depthwise "
        "3x3 on (8,144,56,56): 109-404 ms against 2.6-17 ms; 7x7 on "
        "(8,192,28,28): 98-124 ms against 6.5-16 ms)",
        "0.10.1",
        "'auto' runs such forwards on CPU as a sum over taps, within "
        "taps_forward_max_group_channels and taps_forward_max_terms (and, in "
        "2-D with two or more input channels per group, "
        "taps_forward_max_group_products)"),
    "explicit_axes_reshape": Workaround(
        "arrays typed with explicit mesh axes reject the reshapes of the taps "
        "formulation (a batch-split (N, C, *O) cannot be regrouped without naming "
        "the result's sharding)",
        "0.10.2",
        "explicitly placed operands get the textbook rules, which name it"),
}

# --------------------------------------------------------------------------
# Placement: what the partitioner will do with the operands, read off their
# types at trace time (and off ``jax.set_mesh``).


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the operands live, as far as the choices care.

    Attributes:
      explicit_axes: an operand is typed with explicit mesh axes.
      batch_split_explicitly: the first operand's batch is split on explicit axes.
      auto_mesh: a mesh with Auto axes of more than one device is in effect
        (Auto types do not say which dims are split, so any such mesh counts).
      any_mesh: any visible mesh has an axis of more than one device.
      several_axes: a visible mesh has more than one axis of size > 1.
      manual: traced inside ``shard_map`` (the current mesh has Manual axes).
    """

    explicit_axes: bool = False
    batch_split_explicitly: bool = False
    auto_mesh: bool = False
    any_mesh: bool = False
    several_axes: bool = False
    manual: bool = False

    @classmethod
    def of(cls, *operands) -> Placement:
        """The placement of ``operands`` (arrays, tracers or ShapeDtypeStructs).

        The meshes seen are the operands' types' and ``jax.set_mesh``'s; the
        uncommitted arguments of ``jax.jit(f, in_shardings=...)`` outside
        ``jax.set_mesh`` name no mesh, and count as unplaced.
        """
        types = [jax.typeof(a) if not isinstance(a, jax.ShapeDtypeStruct) else a
                 for a in operands]
        shardings = [t.sharding for t in types if getattr(t, "sharding", None) is not None]
        meshes = [s.mesh for s in shardings] + [jax.sharding.get_abstract_mesh()]
        first = shardings[0] if shardings else None
        return cls(
            explicit_axes=any(bool(s.mesh.explicit_axes) for s in shardings),
            batch_split_explicitly=bool(
                first is not None and first.mesh.explicit_axes
                and len(first.spec) > 0 and first.spec[0] is not None),
            auto_mesh=any(m.shape[a] > 1 for m in meshes for a in m.auto_axes),
            any_mesh=any(size > 1 for m in meshes for size in m.shape.values()),
            several_axes=any(sum(size > 1 for size in m.shape.values()) > 1
                             for m in meshes),
            manual=bool(jax.sharding.get_abstract_mesh().manual_axes))


UNPLACED = Placement()

# --------------------------------------------------------------------------
# The choices.


@dataclasses.dataclass(frozen=True)
class Choice:
    formulation: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """The formulation of each map of one convolution, with the reasons."""
    forward: Choice
    input_grad: Choice
    weight_grad: Choice

    def __str__(self) -> str:
        return "\n".join(f"{name}: {c.formulation} ({c.reason})" for name, c in (
            ("forward", self.forward), ("input grad", self.input_grad),
            ("weight grad", self.weight_grad)))


def _cpu(backend: str | None) -> bool:
    return (backend or jax.default_backend()) == "cpu"


def split_groups(groups: int, channels: int, dtype, placement: Placement,
                 backend: str | None = None) -> Choice:
    """Whether a convolution with ``feature_group_count=groups`` over ``channels``
    input channels runs as one ("lax") or as G dense ones ("per_group")."""
    partial = 1 < groups < channels
    if partial and (placement.batch_split_explicitly or placement.auto_mesh):
        return Choice("per_group", "grouped_batch_all_gather")
    if (partial and groups <= THRESHOLDS["cpu_split_max_groups"].value and _cpu(backend)
            and channels // groups >= THRESHOLDS["cpu_split_min_group_channels"].value):
        return Choice("per_group", "cpu_slow_grouped")
    if 1 < groups == channels and np.dtype(dtype) == np.float64 and _cpu(backend):
        return Choice("per_group", "cpu_f64_depthwise_nan_leak")
    return Choice("lax", "one convolution")


def _tiled(spec: ConvSpec, kernel: Sequence[int]) -> bool:
    return all(s == k and d == 1 for s, k, d in zip(spec.stride, kernel, spec.dilation))


def _plain(spec: ConvSpec) -> bool:
    """Stride and kernel dilation 1 in every spatial dim."""
    return all(v == 1 for v in (*spec.stride, *spec.dilation))


# A dense stride-1 2-D input gradient (plain or dilated) whose input is
# smaller than the kernel's taps (not its dilated extent) in some dim: the
# textbook rule is a convolution with an output smaller than its kernel,
# which XLA CPU runs slowly (2-core Zen3, jaxlib 0.10.1, f32,
# 2026-12-06: bench/results/contexts-cpu-2core-kernel-over-input.json, 36
# drawn 2-D shapes at 2-8 px, batch 2-16, dilation 1-3; at the 16 with I < K
# taps took 0.02-1.09x the textbook rule's time as given, median 0.22, and
# 0.02-0.91x channels-last; at the 5 of them that
# dense_taps_input_grad_max_positions sent to the textbook rule 0.02-0.19x,
# e.g. x (8, 512, 6, 6), w 7x7, 256 outputs: 49 against 2,812 ms; at the 20
# with I >= K 0.61-2.02x, median 1.14). 19 more shapes with I < K, 12 of
# them beyond dense_taps_max_elements or below dense_taps_min_out_channels
# (the same file): 0.01-1.41x, 2 above 1 (7x7 dilation 2 on 5x5 maps with 8
# and 32 outputs); x (16, 512, 6, 6), w 7x7, 256 outputs: 136 against 5,611
# ms. So it comes before those rows, within taps_max_elements.
KERNEL_OVER_INPUT = "cpu measured: input gradient, kernel larger than the input"


# A grouped (not depthwise, G <= cpu_split_max_groups) 2-D input gradient at
# stride 3 or 4 in each dim, with a buffer within
# grouped_strided_input_taps_max_elements: the textbook rule is a grouped
# convolution of the zero-inserted cotangent (or G of them), which XLA CPU
# runs far below its GEMM speed; taps sums by phases. Stride-2 ones already
# took taps (the stride-2 row). A strided transposed convolution's forward
# is this map too (only convolutions were timed). The data drew square
# strides 3 and 4 only, and 2-D kernels.
# 2-core Zen3, jaxlib 0.10.1, f32, autotune's protocol, worse context
# (2026-12-07): on bench/results/contexts-cpu-2core-grouped-fit.json the 15
# input gradients it moves to taps (2-D, stride 3-4, G 2-32, dilation 1-2)
# took 0.02-0.83x their old time; held out (-grouped-heldout.json, seed 3)
# the 5 it moves 0.05-0.48x. Of the 40 shapes (31 fit, 9 held out) that
# reach this row, taps beat the one grouped convolution in the worse context at
# every one (0.93x its time at most; channels-last 1.15x and 1.40x slower at
# two, G = 2 at stride 4), but G dense convolutions beat taps at 17 (by up to
# 1.63x in the fit data, 2.98x held out: batch 1, G = 32, 7x7 at stride 4).
GROUPED_STRIDED_INPUT = "cpu measured: grouped strided input gradient"


def _stride_one_input(spec: ConvSpec, kernel: Sequence[int]) -> bool:
    """An input gradient the positions rows (and, in 2-D, ``KERNEL_OVER_INPUT``)
    cover: of a plain convolution, or of a 2-D one at stride 1 with kernel
    dilation. 1-D dilated ones keep taps: alone
    (bench/results/contexts-cpu-2core-dilated-1d.json) taps took 0.96-1.66x
    the textbook rule's time channels-last at the 7 shapes of several
    samples that reach the last row, as for 2-D, but a TCN's training steps
    took the same time with either rule (within 2%)."""
    return _plain(spec) or (len(kernel) == 2 and all(st == 1 for st in spec.stride))


EMPTY = "an empty operand or output"


def _empty(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int]) -> bool:
    """An operand or the output has no elements (a kernel wider than the padded,
    input-dilated input leaves none), in any layout."""
    if 0 in tuple(x_shape) or 0 in tuple(w_shape):
        return True
    lhs, rhs, _ = _layouts(spec)
    return any(o <= 0 for o in conv_output_shape(
        [x_shape[j] for j in lhs[2:]], [w_shape[j] for j in rhs[2:]], spec))


def _depthwise(spec: ConvSpec, in_channels: int, out_channels: int,
               w_shape: Sequence[int]) -> bool:
    """One input and one output channel per group (w's dim 1 is C_in/G)."""
    return spec.groups == in_channels == out_channels and w_shape[1] == 1


def _unbuffered(input_grad: bool, spec: ConvSpec, in_channels: int, out_channels: int,
                w_shape: Sequence[int]) -> bool:
    """Whether taps computes this gradient without its (N, C_in, ΠK, P)
    buffer: depthwise gradients, and input gradients of one output channel
    per group (``_taps.input_grad`` sums slabs w·ḡ for both)."""
    return (_depthwise(spec, in_channels, out_channels, w_shape)
            or (input_grad and out_channels == spec.groups))


def choose(kind: str, spec: ConvSpec, x_shape, w_shape, g_shape, *arrays,
           placement: Placement | None = None, backend: str | None = None) -> str:
    """The formulation, "transpose" or "taps", of one gradient (``kind`` "input"
    or "weight"); see :func:`gradient_choice` for the reason."""
    if placement is None:
        placement = Placement.of(*arrays) if arrays else UNPLACED
    return gradient_choice(kind, spec, x_shape, w_shape, g_shape, placement,
                           backend).formulation


# A 3-D grouped weight gradient with one output channel per group runs as one
# batch-grouped convolution, the arrangement of JAX's autodiff, not split. CPU,
# 2-core Zen3, jaxlib 0.10.1, medians of 9 (2026-12-05), 7 shapes (G = 8-32,
# 2-12 input channels per group, B = 0.19-28M): it took 0.29-0.73x taps' time
# at 6 and 2.2x at one (geometric-mean regret against the best of the three
# forms 1.5, taps' 2.8); the G dense pieces were 3.4-5.2x slower than it at 4.
# (In the core's terms, as every row here: for a transposed convolution, whose
# weight gradient is the core's with the channel roles swapped, "one output
# channel per group" is one *input* channel per group of the user's layer.)
ONE_GROUPED_3D = "cpu measured: 3-D grouped weight, one output channel per group"
ONE_GROUPED_3D_MAX_GROUP_CHANNELS = 12   # kept to the measured range (2-12)
# With a batch of at least ONE_GROUPED_3D_MIN_BATCH the same holds at any
# number of input channels per group measured (4-96). CPU, 2-core Zen3, jaxlib
# 0.10.1 (2026-12-06): python -m jaxgrad_bench.contexts --family
# grouped-one-out --ndim 3 --map weight_grad --seed 1
# (bench/results/contexts-cpu-2core-grouped3d-seed1.json; G = 4-32, kernel
# 3x3x3, stride 1-2): at the 15 shapes with N >= 4 and a taps candidate the
# batch-grouped convolution took 0.37-1.27x taps' time with the activations
# as given and 0.39-1.23x with their feature axis moved (13 below 1 in each),
# 0.37-0.94x and 0.40-0.83x at the 7 with more than 12 channels per group; at
# N = 1-2, 0.35-4.47x and 0.35-2.72x (taps faster in both at 4 of 10, and at
# these batches the rows below keep taps for more than 12 channels per group;
# two of the row above's three batch-1 shapes, 4-12 channels per group, took
# 2.8-4.5x taps' time as given and 2.6-2.7x moved here: a known loss, left as
# measured before). Held-out run 13's worst point, x=(22, 784, 7, 7, 7)
# w=(16, 49, 3, 3, 3) stride 2: backward 1.47x jax.grad's time with taps (its
# weight gradient alone, medians of 7 interleaved: 82 ms as taps, 17 ms by
# autodiff; autotune's timing of that map: taps 95 ms, the batch-grouped
# convolution 32 ms).
ONE_GROUPED_3D_MIN_BATCH = 4

# On a GPU, a depthwise weight gradient (in the core's terms one input channel
# per group, channel multipliers included; for a transposed convolution one
# output channel per group) with B within taps_max_elements runs as taps.
# Measured on one NVIDIA H200, jax 0.11.2, float32 at full precision
# (bench/results/gpu-h200-sweep-*.json, 2026-12-04): the 8 such points within
# the bound (all convolutions, one with a multiplier of 2, one 3-D) at
# 0.06-1.01x autodiff's time (median 0.55x), compile 0.2-1.6 s against
# 0.1-0.5 s. Not measured: half precision, ROCm, transposed convolutions.
# Every other GPU gradient stays the textbook rule: taps' input gradients were
# faster at most points but compile in 1-11 s, and its dense and grouped weight
# gradients were mixed (0.25-4.7x).
GPU_DEPTHWISE_WEIGHT = "gpu measured: depthwise weight gradient"


# Depthwise gradients (one input and one output channel per group) above
# taps_max_elements run as taps on CPU: neither builds taps' buffer (the input
# gradient sums one fused slab per tap, the weight gradient loops over its taps
# there, _taps.DEPTHWISE_LOOP_MIN_ELEMENTS), so the bound, which is about
# memory, does not apply. 2-core Zen3, jaxlib 0.10.1, medians of 7
# (2026-12-05), 11 shapes above the bound (B = 1.2-4.5e8: 2-D 3x3-7x7 at
# stride 1-2 and dilation 2, 1-D kernel 9, 3-D 3x3x3, 16-512 channels): input
# gradients 0.02-0.39x the textbook rule's time at 11 of 11; weight gradients
# 0.20-0.89x at 10, and 1.9x at the one with 16 channels, which
# depthwise_weight_taps_max_elements keeps on the textbook rule. Two more with
# 16 channels: 1-D kernel 9 (64, 16, 16384), weight gradient 1.9x, so above
# the bound that row covers 1-D too; 3-D (32, 16, 32³) 0.28x, so not 3-D.
# Within the bound, (8, 64, 64, 64) 7x7 had the weight gradient at 1.8x
# (taps as before this row; not fitted further).
DEPTHWISE_UNBUFFERED = "cpu measured: depthwise, no taps buffer"


def _swapped_pads_small(spec: ConvSpec, x_shape, g_shape, kernel) -> bool:
    """Stride 1, and the swapped weight gradient's convolution pads its
    dilated cotangent by at most (K-1)·d/2 on each side
    (``swapped_weight_grad_padding``), as a "same"-padded convolution with
    an odd kernel does: the conv's own pads are at least ceil((K-1)·d/2). An
    even kernel's "same" pads one side less: not measured, not taken. With
    more (a "valid" convolution: (K-1)·d on each side) XLA CPU ran it 3-8.6x
    slower than the textbook rule."""
    pads = swapped_weight_grad_padding(x_shape[2:], g_shape[2:], kernel, spec)
    return all(s == 1 and 2 * max(lh) <= (k - 1) * d
               for s, lh, k, d in zip(spec.stride, pads, kernel, spec.dilation))


def _swapped_bounds(spec: ConvSpec, x_shape, g_shape, kernel, per_group_out: int) -> bool:
    """The bounds every swapped weight gradient row shares: dense, stride 1
    with "same" pads or more, at most ``swapped_weight_max_out_channels``
    outputs, N·(N·C_in·ΠI) within ``swapped_weight_max_batch_input_product``
    or, in 2-D without kernel dilation, from
    ``swapped_weight_large_batch_min_batch`` samples and
    ``swapped_weight_min_in_channels`` input channels,
    N·C_in·ΠI within ``swapped_weight_large_batch_max_elements``."""
    n, c_in = x_shape[:2]
    elements = n * c_in * math.prod(x_shape[2:])
    return (spec.groups == 1 and _swapped_pads_small(spec, x_shape, g_shape, kernel)
            and per_group_out <= THRESHOLDS["swapped_weight_max_out_channels"].value
            and (n * elements <= THRESHOLDS["swapped_weight_max_batch_input_product"].value
                 or (len(kernel) == 2 and all(d == 1 for d in spec.dilation)
                     and n >= THRESHOLDS["swapped_weight_large_batch_min_batch"].value
                     and c_in >= THRESHOLDS["swapped_weight_min_in_channels"].value
                     and elements
                     <= THRESHOLDS["swapped_weight_large_batch_max_elements"].value)))


def _thin_swapped(kind: str, spec: ConvSpec, x_shape, g_shape, kernel,
                  per_group_out: int) -> bool:
    """A 2-D weight gradient that the textbook rule would compute, within the
    swapped rows' bounds, without kernel dilation, with fewer input channels
    than ``swapped_weight_min_in_channels`` but at least
    ``swapped_weight_thin_min_in_channels`` and at least
    ``swapped_weight_thin_min_channel_ratio`` times its outputs: the swapped
    convolution, as measured against the textbook rule only."""
    c_in = x_shape[1]
    return (kind == "weight" and len(kernel) == 2 and all(d == 1 for d in spec.dilation)
            and _swapped_bounds(spec, x_shape, g_shape, kernel, per_group_out)
            and c_in >= THRESHOLDS["swapped_weight_thin_min_in_channels"].value
            and c_in >= THRESHOLDS["swapped_weight_thin_min_channel_ratio"].value * per_group_out)


def gradient_choice(kind: str, spec: ConvSpec, x_shape, w_shape, g_shape,
                    placement: Placement, backend: str | None = None) -> Choice:
    """"transpose", "taps" or (weight gradients) "transpose_swapped", with the reason.

    "auto" on CPU, fitted on a sweep of drawn convolutions
    (``python -m jaxgrad_bench.fit``; docs/performance.md has the regret
    tables). Taps computes a gradient as one GEMM plus data movement, with a
    buffer of B = N·C_in·ΠK·P elements (K copies of the input, or of the input
    gradient); the textbook rule is XLA's own convolution. Taps for:
    depthwise gradients and grouped ones with more than
    ``cpu_split_max_groups`` groups (XLA CPU's grouped paths are 3-200x
    slower); 1x1 and tiled (stride = kernel) kernels, a GEMM with no copies;
    3-D kernels (XLA CPU's 3-D convolutions, strided input gradients most,
    were 2-1000x slower in the sweep), but a grouped 3-D weight gradient with
    one output channel per group and at most 12 input channels per group, or
    a batch of at least 4, is one batch-grouped convolution
    (``ONE_GROUPED_3D``); stride-2 input gradients (XLA's
    zero-inserted transposed convolution against taps' sum by phases, 1.5-3.5x
    slower in the sweep for large buffers; at strides 3 and 4 it was mixed),
    but a dense 2-D one with at least
    ``strided_input_grad_textbook_min_channels`` channels each way, an input
    of at most ``strided_input_grad_textbook_max_positions`` positions and
    more than twice the kernel in every dim, without kernel dilation, keeps
    the textbook rule (from network steps: channels-last, taps loses there),
    and so does a grouped 2-D one without kernel dilation with 2 to
    ``grouped_strided_input_few_out_max_group_out_channels`` output channels
    per group, at least ``grouped_strided_input_few_out_min_channel_ratio``
    times as many input channels, at most ΠK /
    ``grouped_strided_input_few_out_min_taps_per_output`` output channels
    per group, and a buffer above
    ``grouped_strided_input_taps_few_out_max_elements``;
    a dense 2-D input gradient at stride 3-4 without kernel dilation whose
    cotangent is smaller than the kernel in every dim, with at least
    ``strided_input_grad_taps_min_out_channels`` output channels and a buffer
    within ``strided_input_grad_taps_max_elements``;
    2-D grouped input gradients at stride 3-4 with a buffer within
    ``grouped_strided_input_taps_max_elements`` (``GROUPED_STRIDED_INPUT``);
    grouped input gradients with 2 to
    ``taps_input_grad_max_group_out_channels`` output channels and at most
    ``taps_input_grad_max_group_in_channels`` input channels per group and
    a buffer within ``dense_taps_max_elements``, or with one output channel
    per group and at most ``taps_input_grad_one_out_max_terms`` terms
    C_in/G·ΠK; grouped 1-D and 2-D weight gradients with 2 to
    ``grouped_weight_taps_max_group_channels`` input and
    at least ``grouped_weight_taps_min_group_out_channels`` output channels
    per group, within the same buffer bound, and grouped 2-D weight gradients
    of at most ``grouped_weight_taps_few_samples_max_batch`` sample(s) with at
    least ``grouped_weight_taps_few_samples_min_group_channels`` input and at
    most ``grouped_weight_taps_few_samples_max_group_out_channels`` output
    channels per group, within it too.
    Except: a 2-D depthwise weight gradient with more than one tap (a 1x1
    one is a product and a sum, no copies) of at most
    ``depthwise_weight_few_channels`` channels and a batch of at least
    ``depthwise_weight_few_channels_min_batch``, with a buffer above
    ``depthwise_weight_taps_max_elements`` (a 1-D one above
    ``taps_max_elements``) keeps the textbook rule. A dense weight gradient
    at stride 1, padded like an odd kernel's "same" or more, with few output
    and enough input channels and a small product of the batch and the
    input's size, or (2-D) a batch of at least
    ``swapped_weight_large_batch_min_batch`` and an input within
    ``swapped_weight_large_batch_max_elements`` elements
    (``swapped_weight_max_out_channels`` and its bounds) runs as
    "transpose_swapped", ahead of the 3-D row. For the
    rest (dense, and grouped ones
    that the textbook rule splits into G dense convolutions): a dense weight
    gradient strided in every dim, without kernel dilation, with few output
    channels (more at batch 3:
    ``strided_weight_taps_three_sample_max_out_channels``), not too many
    input channels and a small batch (``strided_weight_taps_max_out_channels``,
    ``strided_weight_taps_max_in_channels``, ``strided_weight_taps_max_batch``)
    takes taps within ``dense_taps_max_elements``, and so does a 1-D or 2-D
    one at batches 5-7 with at most 16 outputs (1-D: 32), within a smaller
    buffer and, in 2-D, with fewer input channels
    (``strided_weight_taps_few_samples_max_batch`` and its bounds); a dense
    2-D weight
    gradient at stride 1 of one sample with few input and output channels
    (``one_sample_weight_taps_max_in_channels``,
    ``one_sample_weight_taps_max_out_channels``) takes taps within the same
    bound, ahead of ``dense_taps_min_out_channels``; a dense 2-D input
    gradient at stride 1 (plain or with kernel dilation) whose input is
    smaller than the kernel's taps in some dim takes taps
    (``KERNEL_OVER_INPUT``, ahead of every row after this point); a dense
    2-D weight gradient whose channels are multiples of 8, with at least
    ``dense_taps_aligned_min_in_channels`` inputs, keeps the textbook rule
    below ``dense_taps_aligned_weight_min_out_channels`` output channels
    (XLA's convolution is at its best there); otherwise taps where its
    buffer is small (``dense_taps_small_elements``) and the batch too
    (``dense_taps_small_max_batch``, unless the input has at most
    ``dense_taps_small_thin_channels`` channels), or where each group has
    enough output channels for the GEMM to pay for the copies
    (``dense_taps_min_out_channels``) and the buffer is not too large to stay
    in cache (``dense_taps_max_elements``) and, for a dense input gradient of
    a plain convolution (stride, dilation 1) or of a stride-1 2-D one with
    kernel dilation, the input has few positions
    (``dense_taps_input_grad_max_positions``: XLA's convolution is slow only
    when its output is smaller than the kernel; at larger maps taps' gain in
    the sweeps, timed on NCHW arguments, turned into a loss inside
    networks), or, in 1-D with more than one sample, at most
    ``one_d_taps_input_grad_max_in_channels`` input channels and at least
    ``one_d_taps_input_grad_min_channel_ratio`` times as many output
    channels, at any number of positions; else the textbook rule (a dense 2-D
    weight gradient below ``dense_taps_min_out_channels`` that would get it
    runs swapped instead where its 8-31 input channels are at least twice
    its outputs: ``_thin_swapped``). Above
    ``taps_max_elements`` the textbook rule, but for depthwise gradients,
    which taps computes without its buffer (``DEPTHWISE_UNBUFFERED``), and
    for input gradients of one output channel per group, which it computes
    without one too (slabs w·ḡ) and which the rows then decide as below the
    bound. On a
    GPU, depthwise
    weight gradients within ``taps_max_elements`` take taps
    (``GPU_DEPTHWISE_WEIGHT``); elsewhere than on
    CPU nothing else is set from measurements yet ("transpose"). "autotune" gets these
    rules here (the per-map functions below measure instead, or fall back to
    them). NaN placement: only ``algorithm="taps"`` promises torch's for input
    gradients (docs/guarantees.md).
    """
    if not spec.torch_geometry:
        return Choice("transpose", "taps needs PyTorch's geometry")
    if placement.explicit_axes:
        return Choice("transpose", "explicit_axes_reshape")
    if spec.algorithm not in ("auto", "autotune"):
        return Choice(spec.algorithm, "asked for")
    n, c_in = x_shape[:2]
    kernel = tuple(w_shape[2:])
    taps = math.prod(kernel)
    positions = math.prod(g_shape[2:])
    buffer = n * c_in * taps * positions
    bound = "autotune_max_taps" if len(kernel) == 3 else "taps_max_taps"
    if not _tiled(spec, kernel) and taps > THRESHOLDS[bound].value:
        return Choice("transpose", bound)
    if not _cpu(backend):
        if ((backend or jax.default_backend()) == "gpu" and kind == "weight"
                and spec.groups > 1 and w_shape[1] == 1 and buffer <= TAPS_MAX_ELEMENTS):
            return Choice("taps", GPU_DEPTHWISE_WEIGHT)
        return Choice("transpose", "not measured on this backend")
    depthwise = _depthwise(spec, c_in, g_shape[1], w_shape)
    per_group_out = g_shape[1] // spec.groups
    # past the bound, a gradient that taps computes without a buffer (a
    # one-output input gradient meets the rows below as within it)
    if (buffer > TAPS_MAX_ELEMENTS
            and not _unbuffered(kind == "input", spec, c_in, g_shape[1], w_shape)):
        return Choice("transpose", "taps_max_elements")
    if (kind == "weight" and depthwise and taps > 1
            and ((len(kernel) == 2
                  and n >= THRESHOLDS["depthwise_weight_few_channels_min_batch"].value)
                 or (len(kernel) == 1 and buffer > TAPS_MAX_ELEMENTS))
            and c_in <= THRESHOLDS["depthwise_weight_few_channels"].value
            and buffer > THRESHOLDS["depthwise_weight_taps_max_elements"].value):
        return Choice("transpose", "depthwise_weight_taps_max_elements")
    if buffer > TAPS_MAX_ELEMENTS and depthwise:
        return Choice("taps", DEPTHWISE_UNBUFFERED)
    if spec.groups > 1 and (w_shape[1] == 1 or spec.groups
                            > THRESHOLDS["cpu_split_max_groups"].value):
        return Choice("taps", "cpu measured: depthwise or many groups")
    if taps == 1 or _tiled(spec, kernel):
        return Choice("taps", "cpu measured: one GEMM (1x1 or tiled)")
    if (kind == "weight" and len(kernel) == 3 and spec.groups > 1 and per_group_out == 1
            and (w_shape[1] <= ONE_GROUPED_3D_MAX_GROUP_CHANNELS
                 or n >= ONE_GROUPED_3D_MIN_BATCH)):
        return Choice("transpose", ONE_GROUPED_3D)
    if (kind == "weight" and _swapped_bounds(spec, x_shape, g_shape, kernel, per_group_out)
            and c_in >= THRESHOLDS["swapped_weight_min_in_channels"].value):
        return Choice("transpose_swapped", "swapped_weight_max_out_channels")
    if len(kernel) == 3:
        return Choice("taps", "cpu measured: 3-D")
    if kind == "input" and all(s == 2 for s in spec.stride):
        row = "strided_input_grad_textbook_min_channels"
        if (spec.groups == 1 and len(kernel) == 2 and all(d == 1 for d in spec.dilation)
                and min(c_in, per_group_out) >= THRESHOLDS[row].value
                and math.prod(x_shape[2:])
                <= THRESHOLDS["strided_input_grad_textbook_max_positions"].value
                and all(i > 2 * k for i, k in zip(x_shape[2:], kernel))):
            return Choice("transpose", row)
        row = "grouped_strided_input_taps_few_out_max_elements"
        if (spec.groups > 1 and len(kernel) == 2 and all(d == 1 for d in spec.dilation)
                and 2 <= per_group_out
                <= THRESHOLDS["grouped_strided_input_few_out_max_group_out_channels"].value
                and taps >= THRESHOLDS[
                    "grouped_strided_input_few_out_min_taps_per_output"].value * per_group_out
                and w_shape[1] >= THRESHOLDS[
                    "grouped_strided_input_few_out_min_channel_ratio"].value * per_group_out
                and buffer > THRESHOLDS[row].value):
            return Choice("transpose", row)
        return Choice("taps", "cpu measured: stride-2 input gradient")
    if (kind == "input" and spec.groups == 1 and len(kernel) == 2
            and all(3 <= st <= 4 for st in spec.stride)
            and all(d == 1 for d in spec.dilation)
            and all(o < k for o, k in zip(g_shape[2:], kernel))
            and per_group_out >= THRESHOLDS["strided_input_grad_taps_min_out_channels"].value
            and buffer <= THRESHOLDS["strided_input_grad_taps_max_elements"].value):
        return Choice("taps", "strided_input_grad_taps_min_out_channels")
    if (kind == "input" and spec.groups > 1 and len(kernel) == 2
            and all(3 <= s <= 4 for s in spec.stride)
            and buffer <= THRESHOLDS["grouped_strided_input_taps_max_elements"].value):
        return Choice("taps", GROUPED_STRIDED_INPUT)
    if (kind == "input" and spec.groups > 1 and 2 <= per_group_out
            <= THRESHOLDS["taps_input_grad_max_group_out_channels"].value
            and w_shape[1] <= THRESHOLDS["taps_input_grad_max_group_in_channels"].value
            and buffer <= THRESHOLDS["dense_taps_max_elements"].value):
        return Choice("taps", "taps_input_grad_max_group_out_channels")
    if (kind == "input" and spec.groups > 1 and per_group_out == 1
            and w_shape[1] * taps <= THRESHOLDS["taps_input_grad_one_out_max_terms"].value):
        return Choice("taps", "taps_input_grad_one_out_max_terms")
    if (kind == "weight" and spec.groups > 1
            and w_shape[1] <= THRESHOLDS["grouped_weight_taps_max_group_channels"].value
            and per_group_out >= THRESHOLDS["grouped_weight_taps_min_group_out_channels"].value
            and buffer <= THRESHOLDS["dense_taps_max_elements"].value):
        return Choice("taps", "grouped_weight_taps_max_group_channels")
    strided_row = ("strided_weight_taps_three_sample_max_out_channels" if n == 3
                   else "strided_weight_taps_max_out_channels")
    strided_dense_weight = (kind == "weight" and spec.groups == 1
                            and all(st >= 2 for st in spec.stride)
                            and all(d == 1 for d in spec.dilation))
    if (strided_dense_weight
            and per_group_out <= THRESHOLDS[strided_row].value
            and c_in <= THRESHOLDS["strided_weight_taps_max_in_channels"].value
            and n <= THRESHOLDS["strided_weight_taps_max_batch"].value
            and buffer <= THRESHOLDS["dense_taps_max_elements"].value):
        return Choice("taps", strided_row)
    one_d = len(kernel) == 1     # else 2-D: 3-D returned above
    if (strided_dense_weight
            and THRESHOLDS["strided_weight_taps_max_batch"].value < n
            <= THRESHOLDS["strided_weight_taps_few_samples_max_batch"].value
            and per_group_out <= THRESHOLDS[
                "strided_weight_taps_few_samples_one_d_max_out_channels" if one_d
                else "strided_weight_taps_max_out_channels"].value
            and c_in <= THRESHOLDS[
                "strided_weight_taps_max_in_channels" if one_d
                else "strided_weight_taps_few_samples_max_in_channels"].value
            and buffer <= THRESHOLDS["strided_weight_taps_few_samples_max_elements"].value):
        return Choice("taps", "strided_weight_taps_few_samples_max_batch")
    if (kind == "weight" and spec.groups == 1 and len(kernel) == 2
            and c_in % 8 == 0 and per_group_out % 8 == 0
            and c_in >= THRESHOLDS["dense_taps_aligned_min_in_channels"].value
            and per_group_out
            < THRESHOLDS["dense_taps_aligned_weight_min_out_channels"].value):
        return Choice("transpose", "dense_taps_aligned_weight_min_out_channels")
    stride_one_input = (kind == "input" and spec.groups == 1
                        and _stride_one_input(spec, kernel))
    if (stride_one_input and len(kernel) == 2
            and any(i < k for i, k in zip(x_shape[2:], kernel))):
        return Choice("taps", KERNEL_OVER_INPUT)
    if (buffer <= THRESHOLDS["dense_taps_small_elements"].value
            and (n <= THRESHOLDS["dense_taps_small_max_batch"].value
                 or c_in <= THRESHOLDS["dense_taps_small_thin_channels"].value)):
        return Choice("taps", "dense_taps_small_elements")
    if (kind == "weight" and spec.groups > 1 and len(kernel) == 2
            and n <= THRESHOLDS["grouped_weight_taps_few_samples_max_batch"].value
            and w_shape[1]
            >= THRESHOLDS["grouped_weight_taps_few_samples_min_group_channels"].value
            and per_group_out
            <= THRESHOLDS["grouped_weight_taps_few_samples_max_group_out_channels"].value
            and buffer <= THRESHOLDS["dense_taps_max_elements"].value):
        return Choice("taps", "grouped_weight_taps_few_samples_max_batch")
    if (kind == "weight" and spec.groups == 1 and len(kernel) == 2 and n == 1
            and all(st == 1 for st in spec.stride)
            and c_in <= THRESHOLDS["one_sample_weight_taps_max_in_channels"].value
            and per_group_out <= THRESHOLDS["one_sample_weight_taps_max_out_channels"].value
            and buffer <= THRESHOLDS["dense_taps_max_elements"].value):
        return Choice("taps", "one_sample_weight_taps_max_in_channels")
    if per_group_out < THRESHOLDS["dense_taps_min_out_channels"].value:
        if _thin_swapped(kind, spec, x_shape, g_shape, kernel, per_group_out):
            return Choice("transpose_swapped", "swapped_weight_thin_min_channel_ratio")
        return Choice("transpose", "dense_taps_min_out_channels")
    if buffer > THRESHOLDS["dense_taps_max_elements"].value:
        return Choice("transpose", "dense_taps_max_elements")
    if stride_one_input:
        if (len(kernel) == 1 and n > 1
                and c_in <= THRESHOLDS["one_d_taps_input_grad_max_in_channels"].value
                and per_group_out
                >= THRESHOLDS["one_d_taps_input_grad_min_channel_ratio"].value * c_in):
            return Choice("taps", "one_d_taps_input_grad_min_channel_ratio")
        row = ("dense_taps_input_grad_max_positions" if n > 1
               else "dense_taps_input_grad_one_sample_max_positions")
        if math.prod(x_shape[2:]) > THRESHOLDS[row].value:
            return Choice("transpose", row)
    return Choice("taps", "cpu measured")


def weight_split(spec: ConvSpec, channels: int, placement: Placement,
                 backend: str | None = None) -> Choice:
    """Whether the textbook weight gradient runs as one batch-grouped conv or
    as G dense ones."""
    if spec.groups > 1 and placement.several_axes:
        return Choice("transpose_per_group", "multi_axis_batch_group")
    if (1 < spec.groups < channels and spec.groups
            <= THRESHOLDS["cpu_split_max_groups"].value and _cpu(backend)
            and not placement.any_mesh):
        return Choice("transpose_per_group", "cpu_slow_grouped")
    return Choice("transpose", "one convolution")


# --------------------------------------------------------------------------
# One map's formulation. The kernels of ``_core`` ask these at trace time.


def _layouts(spec: ConvSpec):
    """(lhs, rhs, out) dimension orders: spec's numbers, or PyTorch's."""
    if spec.numbers is not None:
        return spec.numbers.lhs_spec, spec.numbers.rhs_spec, spec.numbers.out_spec
    dims = tuple(range(spec.ndim + 2))
    return dims, dims, dims


def _regrouped_forward(spec: ConvSpec, placement: Placement, name: str) -> str | None:
    """Why a forward that regroups x as (N, G, C_in/G, ..) (taps, im2col) does
    not exist here; None where it may: a grouped convolution of PyTorch's
    geometry whose operands carry no explicit mesh axes."""
    if not spec.torch_geometry or spec.out_sharding is not None:
        return f"{name} needs PyTorch's geometry"
    if spec.groups == 1:
        return "one convolution"
    if placement.explicit_axes:
        return "explicit_axes_reshape"
    return None


def forward_taps(spec: ConvSpec, w_shape: Sequence[int],
                 placement: Placement = UNPLACED) -> str | None:
    """Why the forward has no taps formulation here; None where it has one."""
    missing = _regrouped_forward(spec, placement, "taps")
    if missing is not None:
        return missing
    per_group, taps = w_shape[1], math.prod(w_shape[2:])
    if per_group > THRESHOLDS["taps_forward_max_group_channels"].value:
        return "taps_forward_max_group_channels"
    if per_group * taps > THRESHOLDS["taps_forward_max_terms"].value:
        return "taps_forward_max_terms"
    return None


GROUPED_FORWARD_TAPS_BOUNDS = ("taps_forward_max_group_products",
                               "taps_forward_stride_one_max_group_products")


def _grouped_forward_taps_bound(spec: ConvSpec, w_shape: Sequence[int],
                                placement: Placement) -> str | None:
    """The row (of :data:`GROUPED_FORWARD_TAPS_BOUNDS`) that keeps "auto" from
    a 2-D grouped forward's taps formulation on CPU, None where it takes it:
    unplaced, with at most ``cpu_split_max_groups`` groups (the range
    measured; beyond it only one grouped convolution would be left) and at
    least two input channels per group, C_out/G·C_in/G·ΠK products per
    output position and group above ``taps_forward_max_group_products``
    (strided) or ``taps_forward_stride_one_max_group_products`` (stride 1)."""
    if (len(w_shape) != 4 or w_shape[1] < 2 or placement != UNPLACED
            or spec.groups > THRESHOLDS["cpu_split_max_groups"].value):
        return None
    strided, stride_one = GROUPED_FORWARD_TAPS_BOUNDS
    row = stride_one if all(s == 1 for s in spec.stride) else strided
    products = (w_shape[0] // spec.groups) * w_shape[1] * math.prod(w_shape[2:])
    return row if products > THRESHOLDS[row].value else None


def forward_im2col(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int],
                   placement: Placement = UNPLACED,
                   max_elements: int = TAPS_MAX_ELEMENTS) -> str | None:
    """Why the forward has no im2col formulation (patches and one GEMM per
    group, ``_taps.forward_im2col``) here; None where it has one: dense,
    grouped and depthwise convolutions of PyTorch's geometry whose patches
    (N·C_in·ΠK·ΠO elements) fit within ``max_elements`` (``taps_max_elements``
    unless given)."""
    missing = _regrouped_forward(spec, placement, "im2col")
    if missing is not None and missing != "one convolution":
        return missing
    out = conv_output_shape(x_shape[2:], w_shape[2:], spec)
    if x_shape[0] * x_shape[1] * math.prod(w_shape[2:]) * math.prod(out) > max_elements:
        return "patches above the bound"
    return None


def forward_choice(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int],
                   dtype, placement: Placement = UNPLACED,
                   backend: str | None = None) -> Choice:
    """"lax", "per_group", "taps" or "im2col" for y = conv_core(x, w, spec),
    with the reason.

    "transpose" keeps the convolution (per group where ``split_groups`` says
    so); "taps" takes the taps formulation wherever there is one
    (:func:`forward_taps`); "auto" does too on CPU (``cpu_slow_grouped_forward``),
    but not for an unplaced 2-D one with at most ``cpu_split_max_groups``
    groups, at least two input channels per group and more than
    ``taps_forward_max_group_products`` products C_out/G·C_in/G·ΠK
    (``taps_forward_stride_one_max_group_products`` at stride 1),
    and where there is none takes im2col on CPU for a batch of at most
    ``im2col_forward_max_batch`` (within its measured range: see that row);
    a dense forward with few output positions takes im2col on CPU
    (``dense_im2col_forward_max_positions``, and for one sample
    ``dense_im2col_forward_one_sample_max_positions``); elsewhere it keeps
    the convolution.
    "im2col" is never asked for by name: only "auto" and "autotune" run it.
    An empty operand or output keeps lax's convolution whatever was asked for
    (it has no sum to reformulate, and taps' slices would be of negative size).
    """
    if spec.algorithm == "autotune":
        return _autotuned("forward", spec, x_shape, w_shape, dtype, placement, backend,
                          lambda auto: forward_choice(auto, x_shape, w_shape, dtype,
                                                      placement, backend))
    if _empty(spec, x_shape, w_shape):
        return Choice("lax", EMPTY)
    c_in = x_shape[_layouts(spec)[0][1]]
    split = split_groups(spec.groups, c_in, dtype, placement, backend)
    if (spec.groups == 1 and spec.algorithm == "auto" and _cpu(backend)
            and placement == UNPLACED and forward_im2col(
                spec, x_shape, w_shape, placement,
                THRESHOLDS["dense_taps_max_elements"].value) is None):
        rule = ("dense_im2col_forward_max_positions" if x_shape[0] > 1
                else "dense_im2col_forward_one_sample_max_positions")
        if (math.prod(conv_output_shape(x_shape[2:], w_shape[2:], spec))
                <= THRESHOLDS[rule].value):
            return Choice("im2col", rule)
    if spec.groups == 1 or spec.algorithm == "transpose":
        return split
    missing = forward_taps(spec, w_shape, placement)
    if spec.algorithm == "taps":
        return (Choice("taps", "asked for") if missing is None
                else Choice(split.formulation, f"{missing}; {split.reason}"))
    if missing is None and _cpu(backend):
        missing = _grouped_forward_taps_bound(spec, w_shape, placement)
        if missing is None:
            return Choice("taps", "cpu_slow_grouped_forward")
    if (_cpu(backend) and placement == UNPLACED
            and x_shape[0] <= THRESHOLDS["im2col_forward_max_batch"].value
            and spec.groups <= THRESHOLDS["cpu_split_max_groups"].value and w_shape[1] > 1
            and forward_im2col(spec, x_shape, w_shape, placement,
                               THRESHOLDS["dense_taps_max_elements"].value) is None):
        return Choice("im2col", f"{missing}; im2col_forward_max_batch")
    if missing in GROUPED_FORWARD_TAPS_BOUNDS:
        return Choice(split.formulation, f"{missing}; {split.reason}")
    return split


def input_grad_choice(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int],
                      g_shape: Sequence[int], dtype, placement: Placement = UNPLACED,
                      backend: str | None = None) -> Choice:
    """"transpose", "transpose_per_group" or "taps" for x̄, with the reason."""
    if spec.algorithm == "autotune":
        return _autotuned("input_grad", spec, x_shape, w_shape, dtype, placement, backend,
                          lambda auto: input_grad_choice(auto, x_shape, w_shape, g_shape,
                                                         dtype, placement, backend))
    choice = gradient_choice("input", spec, x_shape, w_shape, g_shape, placement, backend)
    if choice.formulation == "transpose":
        c_out = g_shape[_layouts(spec)[2][1]]
        split = split_groups(spec.groups * spec.batch_groups, c_out, dtype, placement,
                             backend)
        if split.formulation == "per_group":
            return Choice("transpose_per_group", f"{choice.reason}; {split.reason}")
    return choice


def weight_grad_choice(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int],
                       g_shape: Sequence[int], dtype, placement: Placement = UNPLACED,
                       backend: str | None = None) -> Choice:
    """"transpose", "transpose_per_group", "transpose_swapped" or "taps" for w̄,
    with the reason."""
    if spec.algorithm == "autotune":
        return _autotuned("weight_grad", spec, x_shape, w_shape, dtype, placement,
                          backend, lambda auto: weight_grad_choice(
                              auto, x_shape, w_shape, g_shape, dtype, placement, backend))
    choice = gradient_choice("weight", spec, x_shape, w_shape, g_shape, placement,
                             backend)
    if choice.formulation == "transpose" and spec.batch_groups == 1:
        split = weight_split(spec, x_shape[_layouts(spec)[0][1]], placement, backend)
        # ONE_GROUPED_3D is the whole convolution on CPU; a workaround's
        # split (several mesh axes) still applies to it
        if split.formulation == "transpose_per_group" and not (
                choice.reason == ONE_GROUPED_3D and split.reason == "cpu_slow_grouped"):
            return Choice(split.formulation, f"{choice.reason}; {split.reason}")
    return choice


# --------------------------------------------------------------------------
# Autotuning: what is timed, and where it is not.

MAPS = ("forward", "input_grad", "weight_grad")
FORMULATIONS = {"forward": ("lax", "per_group", "taps", "im2col"),
                "input_grad": ("transpose", "transpose_per_group", "taps"),
                "weight_grad": ("transpose", "transpose_per_group", "transpose_swapped",
                                "taps")}


def candidates(kind: str, spec: ConvSpec, x_shape: Sequence[int],
               w_shape: Sequence[int], g_shape: Sequence[int], dtype,
               backend: str | None = None) -> tuple[str, ...]:
    """The formulations autotuning times for one map (``kind``, one of
    :data:`MAPS`) of an unplaced convolution, the textbook one first.

    Every applicable one: the per-group forms up to ``autotune_max_pieces``
    groups, the swapped weight gradient of a dense convolution of PyTorch's
    geometry at stride 1 (strided, its dilated cotangent ran 0.98-21x the time on
    CPU), taps where it has a formulation (the gradients' within
    ``taps_max_elements``, depthwise ones and input gradients of one output
    channel per group at any size: they build no buffer; kernels of at most
    ``autotune_max_taps`` taps, or tiled), and
    for the forward im2col (:func:`forward_im2col`). The whole-convolution
    form is left out only where a WORKAROUNDS row rules it out for its values
    (``cpu_f64_depthwise_nan_leak``: its per-group form replaces it).
    """
    lhs, _, out = _layouts(spec)
    groups = spec.groups * (spec.batch_groups if kind == "input_grad" else 1)
    pieces = 1 < groups <= THRESHOLDS["autotune_max_pieces"].value
    if kind == "forward":
        whole, split, channels = "lax", "per_group", x_shape[lhs[1]]
        pieces = pieces and spec.batch_groups == 1
        taps = forward_taps(spec, w_shape) is None
        im2col = forward_im2col(spec, x_shape, w_shape) is None
    else:
        whole, split = "transpose", "transpose_per_group"
        channels = g_shape[out[1]] if kind == "input_grad" else x_shape[lhs[1]]
        pieces = pieces and (kind == "input_grad" or spec.batch_groups == 1)
        unbuffered = _unbuffered(kind == "input_grad", spec, x_shape[lhs[1]],
                                 g_shape[out[1]], w_shape)
        taps = spec.torch_geometry and (unbuffered or (
            x_shape[0] * x_shape[1] * math.prod(w_shape[2:]) * math.prod(g_shape[2:])
            <= TAPS_MAX_ELEMENTS)) and (
            math.prod(w_shape[2:]) <= THRESHOLDS["autotune_max_taps"].value
            or _tiled(spec, w_shape[2:]))
        im2col = False
    leak = kind != "weight_grad" and split_groups(
        groups, channels, dtype, UNPLACED, backend).reason == "cpu_f64_depthwise_nan_leak"
    names = [split] if leak else [whole]
    if pieces and split not in names:
        names.append(split)
    if (kind == "weight_grad" and spec.torch_geometry and spec.groups == 1
            and all(st == 1 for st in spec.stride)):
        names.append("transpose_swapped")
    if taps:
        names.append("taps")
    if im2col:
        names.append("im2col")
    return tuple(names)


def autotune_fallback(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int],
                      dtype, placement: Placement, backend: str | None = None
                      ) -> str | None:
    """Why "autotune" cannot time this configuration; None where it can."""
    if placement.manual:
        return "inside shard_map"
    if placement != UNPLACED:
        return "operands placed on a mesh"
    if spec.out_sharding is not None:
        return "out_sharding given"
    if not jnp.issubdtype(dtype, jnp.inexact):
        return f"dtype {jnp.dtype(dtype).name} is not floating or complex"
    if _empty(spec, x_shape, w_shape):
        return EMPTY
    try:
        jax.devices(backend or jax.default_backend())
    except RuntimeError:
        return f"no {backend} device in this process"
    return None


def _autotuned(kind: str, spec: ConvSpec, x_shape, w_shape, dtype,
               placement: Placement, backend: str | None, auto_choice) -> Choice:
    why = autotune_fallback(spec, x_shape, w_shape, dtype, placement, backend)
    if why is not None:
        choice = auto_choice(dataclasses.replace(spec, algorithm="auto"))
        return Choice(choice.formulation,
                      f"autotune falls back to auto: {why}; {choice.reason}")
    from . import _autotune     # it times the kernels of _core, which import this module
    return getattr(_autotune.tuned_plan(spec, x_shape, w_shape, dtype, backend), kind)


# --------------------------------------------------------------------------
# What ran: the kernels report each choice as they make it, at trace time.

_recorders = threading.local()


@dataclasses.dataclass(frozen=True)
class Made:
    """One choice a kernel made while tracing: which map, of which shapes."""
    kind: str                     # one of MAPS
    choice: Choice
    shapes: tuple[tuple[int, ...], ...]   # the map's two operands' shapes
    spec: ConvSpec | None = None


@contextlib.contextmanager
def recording() -> Iterator[list[Made]]:
    """Collect the choices the convolution kernels make while this is open.

    Tracing is what decides (``jax.make_jaxpr`` of a function is enough). A
    call that hits one of JAX's trace caches traces nothing, so records
    nothing: trace a function not traced before at these shapes (a fresh
    closure). The bench reports each case's formulations this way.

    >>> import jax, jax.numpy as jnp, jaxgrad
    >>> x, w = jnp.ones((1, 2, 8, 8)), jnp.ones((4, 2, 3, 3))
    >>> with recording() as made:
    ...     _ = jax.make_jaxpr(lambda x, w: jaxgrad.conv2d(x, w, algorithm="taps"))(x, w)
    >>> [(m.kind, m.choice.formulation) for m in made]     # dense: no forward taps
    [('forward', 'lax')]
    """
    stack = getattr(_recorders, "stack", None)
    if stack is None:
        stack = _recorders.stack = []
    made: list[Made] = []
    stack.append(made)
    try:
        yield made
    finally:   # by identity: two recorders with equal contents are still two
        del stack[next(i for i, m in enumerate(stack) if m is made)]


def note(kind: str, choice: Choice, spec: ConvSpec, *operands) -> Choice:
    """Report ``choice`` (of map ``kind`` of ``spec`` on ``operands``) to every
    open recorder."""
    for made in getattr(_recorders, "stack", ()):
        made.append(Made(kind, choice, tuple(tuple(a.shape) for a in operands), spec))
    return choice


# --------------------------------------------------------------------------
# All three.


def plan(spec: ConvSpec, x_shape: Sequence[int], w_shape: Sequence[int],
         g_shape: Sequence[int], dtype, placement: Placement = UNPLACED,
         backend: str | None = None) -> Plan:
    """The formulations of ``conv_core(x, w, spec)`` and its two gradients.

    Args:
      spec: the convolution (its ``algorithm`` is the user's choice).
      x_shape, w_shape, g_shape: (N, C_in, *I), (C_out, C_in/G, *K), (N, C_out, *O)
        (in ``spec.numbers``' layouts where it has them).
      dtype: the operands' dtype.
      placement: of the operands (``Placement.of(x, w)``); unplaced by default.
      backend: "cpu", "gpu", "tpu"; default ``jax.default_backend()``.

    Returns:
      The three choices. Nothing runs, except that under "autotune" a
      configuration not yet tuned (in memory or in the disk cache) is tuned
      on ``backend``'s first device first.
    """
    return Plan(
        forward_choice(spec, x_shape, w_shape, dtype, placement, backend),
        input_grad_choice(spec, x_shape, w_shape, g_shape, dtype, placement, backend),
        weight_grad_choice(spec, x_shape, w_shape, g_shape, dtype, placement, backend))
