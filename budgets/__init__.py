"""Budget lines, revisions, expenditures, currencies and rates, budget vs actual, imports and the Odoo sync."""
