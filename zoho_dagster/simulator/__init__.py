"""A faithful Zoho CRM REST API v6 simulator on a real TCP port (docs/design.md §5, docs/contracts.md §1).

`run_simulator(...)` starts it in a subprocess; `SimulatorControl` drives its `/__simulator/` endpoints.
"""

from zoho_dagster.simulator.runner import RunningSimulator, SimulatorControl, run_simulator

__all__ = ["RunningSimulator", "SimulatorControl", "run_simulator"]
