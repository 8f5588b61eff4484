"""The checking tools: parity with PyTorch, tolerances, and the command line.

  _testing     jaxgrad.testing: check_parity, check_vjp, compare
  _tolerance   the tolerance table, keyed by dtype, and the error measures
  _reference   independent references (lax autodiff, torch) for the conv family
  _check       the cases of ``jaxgrad check``
  _cli         the ``jaxgrad`` command (``check``; ``bench`` imports the bench lazily)
"""
