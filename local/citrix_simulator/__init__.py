"""A faithful local stand-in for the Citrix Cloud token endpoint and Catalog Service API.

Use in-process (``CitrixSimulator(scenario, clock=...)`` then ``.start()``) or standalone
(``python -m local.citrix_simulator --scenario FILE --port N``). Scenario format:
``docs/scenario-format.md``.
"""

from __future__ import annotations

from local.citrix_simulator.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from local.citrix_simulator.server import CitrixSimulator

__all__ = ["CitrixSimulator", "Scenario", "ScenarioError", "load_scenario", "parse_scenario"]
