"""The convolution family: public ops, gradient functions, the core and its plan.

  _ops          conv, conv1d/2d/3d (N-d implementation and VARIANTS), padding modes
  _transpose    conv_transpose, conv_transpose1d/2d/3d: the core's input gradient
  _grad         jaxgrad.grad.conv*_input/_weight, conv_transpose*_input/_weight
  _general      conv_general_dilated, the lax-signature drop-in
  _core         the bilinear triple (conv, input gradient, weight gradient) that
                all of the above run on, declared with ``_rules.bilinear``
  _taps         the gradients, and grouped and depthwise forwards, as sums over
                kernel taps (a second formulation)
  _plan         which formulation each map runs, from one table of thresholds
                and XLA workarounds (or from measurements: _autotune)
  _autotune     algorithm="autotune": each formulation timed on the device in
                two layouts, the textbook one kept unless another is faster in
                both; in memory and in a JSON cache on disk
  _algorithms   the user's setting ("auto", "transpose", "taps", "autotune"), per
                thread and part of jax.jit's cache key
  _tuned        autotune_jit: a whole jitted function compiled under each
                setting and timed; the fastest kept per argument signature
  _spec         ConvSpec and the pure shape arithmetic (output sizes, pads)
"""
