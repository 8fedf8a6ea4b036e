"""The ``instseg`` command line; one file per sub-command."""
