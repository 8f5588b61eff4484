"""Gradient checks for your own functions, as jaxgrad's test-suite runs them.

  check_parity(jax_fn, torch_fn, *args)   outputs and VJPs (and second order)
                                          against PyTorch autograd
  check_vjp(fn, *args)                    a custom VJP against float64 central
                                          differences
  Report, Comparison                      what both return: one row per array,
                                          ``str(report)`` is a table
  check_model_parity(jax_fn, torch_module, *inputs)
                                          a ported model against its torch
                                          original: output, parameter
                                          gradients, and every layer named with
                                          ``jaxgrad.tap`` (value and gradient)
  ModelReport, LayerComparison            what it returns; names the first
                                          layer that differs

Tolerances come from one table keyed by dtype (``jaxgrad._checking._tolerance``):
errors relative to the reference's largest magnitude. torch is optional: it
is imported when ``check_parity`` runs.
"""

from ._checking._model import LayerComparison as LayerComparison
from ._checking._model import ModelReport as ModelReport
from ._checking._model import check_model_parity as check_model_parity
from ._checking._testing import Comparison as Comparison
from ._checking._testing import Report as Report
from ._checking._testing import check_parity as check_parity
from ._checking._testing import check_vjp as check_vjp

__all__ = ["check_parity", "check_vjp", "Report", "Comparison",
           "check_model_parity", "ModelReport", "LayerComparison"]
