"""``cf-access report``: the quarterly access review (model -> HTML, CSV and JSON)."""
