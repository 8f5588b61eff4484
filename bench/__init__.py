"""jaxgrad_bench: the benchmark harness behind ``jaxgrad bench``.

Times convolution gradients three ways on the same inputs: jaxgrad's explicit
VJPs, JAX autodiff of the plain ``lax`` forward, and PyTorch autograd. See
``bench/README.md`` for the protocol, the cases and the results.json schema.

Modules (the layout follows a run):
  _options   command-line options, shared by the command and its child
  _launch    the child's environment (XLA_FLAGS, allocator, threads); spawn
  _child     the measuring process: set-up, peak, cases, outputs
  _backend   device, precision pinning, thread counts
  _cases     the named cases (shapes from well-known networks) and suites
  _flops     analytic FLOP counts
  _implementations  jaxgrad, lax autodiff and torch forwards of a case
  _measure   inputs, compiled calls, correctness
  _timing    the timing protocol (one function)
  _stats     median, minimum, GFLOP/s, ratios
  _run       the peak and one case, as JSON-ready records
  _machine   machine, versions and environment records
  _report    console table, results.json, results.md
  _chart     the speedup bar chart (needs matplotlib)
"""
