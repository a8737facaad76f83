"""Associations: ASN JSON read/write, ``asn_from_list`` and the grouping of exposures into
stage-3 products."""

from jwst_dask.associations.asn import load_asn, new_association, read_asn, validate_asn, write_asn
from jwst_dask.associations.builder import asn_from_list
from jwst_dask.associations.grouping import group_exposures, write_groups
from jwst_dask.associations.naming import level3_product_name

__all__ = [
    "asn_from_list",
    "group_exposures",
    "level3_product_name",
    "load_asn",
    "new_association",
    "read_asn",
    "validate_asn",
    "write_asn",
    "write_groups",
]
