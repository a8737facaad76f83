from jwst_dask.cli import entry

entry()
