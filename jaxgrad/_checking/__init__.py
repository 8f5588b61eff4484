"""The checking tools: parity with PyTorch, tolerances, and the command line.

  _testing     jaxgrad.testing: check_parity, check_vjp, compare
  _model       jaxgrad.testing: check_model_parity (a port vs its nn.Module,
               layer by layer through jaxgrad.tap)
  _tolerance   the tolerance table, keyed by dtype, and the error measures
  _reference   independent references (lax autodiff, torch) for the conv family
  _check       the engine of ``jaxgrad check``: Case, run_case, the console lines
  _families    its cases, registered by op family (FAMILIES)
  _cli         the ``jaxgrad`` command (``check``; ``bench`` imports the bench lazily)
"""
