"""The pooling family.

  _ops    the window maps and their explicit VJPs (mean and its adjoint; the
          max pick, its scatter and gather), the N-d implementations and
          VARIANTS of max/avg/adaptive pooling
  _docs   the docstrings of the rank variants
  _spec   PoolSpec and Windows: window tables, output sizes, divisors, argument
          parsing (pure Python)
"""
