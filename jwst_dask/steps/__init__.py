"""Steps: the :class:`Step` base class and one module per calibration step.

Step classes are found by alias through ``graphs/steps.yaml``
(:func:`jwst_dask.steps.base.resolve_class`).
"""

from jwst_dask.steps.base import Step

__all__ = ["Step"]
