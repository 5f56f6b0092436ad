"""The one error of the budget model."""

from __future__ import annotations


class BudgetError(Exception):
    """The rendered files describe something this model cannot account for."""
