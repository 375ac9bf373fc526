"""The one ``Definitions`` object that ``dagster dev``, ``dagster asset materialize``, the ``dg`` commands and
the demo load.

The repository is a dg project (``[tool.dg]`` in ``pyproject.toml``): its defs module,
:mod:`zoho_dagster.defs`, holds one :class:`~zoho_dagster.component.ZohoCRMComponent` configured from the
environment alone, which builds what :func:`~zoho_dagster.builder.build_definitions` builds. Installed without
the repository (a wheel, no ``pyproject.toml`` above the package), that function builds the same definitions
directly.

Loading must work with no secret set (the UI, ``definitions validate``, ``dg check defs`` and CI load it on
machines without Zoho credentials): the resource reads its configuration lazily through ``EnvVar``s and the
IO manager resolves its database only when a run writes, so loading never starts the embedded Postgres
either. The streams and their tables come from the replication file (``ZOHO_DAGSTER_REPLICATION``; unset: the
whole catalog into ``zoho_crm.<stream>``) and the org's modules from the component's state or the discovery
file, which only reads files, so loading never calls Zoho.
"""

import warnings
from pathlib import Path

import dagster as dg

from zoho_dagster.environment import batch_dagster_events

PACKAGE = Path(__file__).resolve().parent


def _in_repository() -> bool:
    """Whether the package sits in this repository, whose pyproject.toml makes it a dg project."""
    pyproject = PACKAGE.parent / "pyproject.toml"
    return pyproject.is_file() and "[tool.dg.project]" in pyproject.read_text(encoding="utf-8")


def load_definitions() -> dg.Definitions:
    """The repository's defs folder, or (installed without the repository) the same definitions built
    directly.

    The defs folder is loaded as a component tree rooted at :mod:`zoho_dagster.defs` rather than through
    ``dg.load_from_defs_folder``: that reads ``[tool.dg.project]``'s code location name, and Dagster warns
    on every load whose location has another name (``dagster asset materialize -m zoho_dagster.definitions``
    names it after the module). The tree takes the loading location's own name.
    """
    if not _in_repository():
        from zoho_dagster.builder import build_definitions

        return build_definitions()
    import zoho_dagster.defs

    tree = dg.ComponentTree.from_module(defs_module=zoho_dagster.defs, project_root=PACKAGE.parent)
    with warnings.catch_warnings():
        # As load_from_defs_folder does: the component machinery's own beta and preview calls.
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        warnings.simplefilter("ignore", category=dg.PreviewWarning)
        return tree.build_defs()


EXECUTOR = dg.in_process_executor
"""This project's own choice, beside the package's definitions (which set no executor, so that they merge
into any project): every run it launches, ``dagster asset materialize --select leads`` and ``dg launch``
included, runs its steps in the run's process. A step in a process of its own re-imports Dagster and these
definitions: the seed command took 30 s that way against 9 s in-process on a 2-core machine (a stream and
its two check steps), while the work is bound by Zoho's concurrency, which one process already uses fully
(builder.py)."""


EXECUTION_TYPE_WARNING = (
    r"Parameter `execution_type` of function `AssetsDefinition.__init__` is currently in beta"
)
"""Dagster 1.13.27 warns about its own call whenever a component's asset checks are loaded: the component
tree rebuilds each check with ``AssetsDefinition.with_attributes`` (a plain ``AssetsDefinition``), and the
repository turns it back into an ``AssetChecksDefinition`` passing the beta ``execution_type`` parameter
(docs/dagster.md §7). Silenced here, in the process that loads these definitions, and only that message."""


def quiet_component_checks() -> None:
    """Silence :data:`EXECUTION_TYPE_WARNING` for the rest of the process (nothing else)."""
    warnings.filterwarnings("ignore", message=EXECUTION_TYPE_WARNING, category=dg.BetaWarning)


batch_dagster_events()
quiet_component_checks()
defs = dg.Definitions.merge(load_definitions(), dg.Definitions(executor=EXECUTOR))
