"""Where snapshots come from: the live BCC probes, or a recording."""
