"""``python -m zoho_dagster.cli``: the same commands as the ``zoho-dagster`` script."""

import sys

from zoho_dagster.cli import main

sys.exit(main())
