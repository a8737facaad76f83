import sys

from jwst_dask.cli import main

sys.exit(main())
