"""Entry point for `python -m zoho_dagster.simulator`."""

from zoho_dagster.simulator.cli import main

if __name__ == "__main__":
    main()
