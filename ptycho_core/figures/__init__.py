"""Every matplotlib figure of the study."""
