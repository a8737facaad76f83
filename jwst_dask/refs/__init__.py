"""CRDS reference data: best-reference selection with the stock ``crds`` client on an offline
local cache (or the user's own CRDS setup), and readers that open any reference file as a Dataset.

Public API: :func:`best_references`, :func:`open_reference`, :func:`ensure_local_cache`,
:func:`ensure_all_references`.
"""

from jwst_dask.refs.cache import ensure_all_references, ensure_local_cache
from jwst_dask.refs.readers import open_reference
from jwst_dask.refs.select import best_references, crds_parameters

__all__ = [
    "best_references",
    "crds_parameters",
    "ensure_all_references",
    "ensure_local_cache",
    "open_reference",
]
