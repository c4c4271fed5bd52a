"""One module per workflow rule: the only code the workflow scripts call."""
