"""From patterns to one object: stitching, gauge synchronisation, network inference, the pty-chi arm."""
