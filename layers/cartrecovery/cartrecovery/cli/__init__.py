"""The operator command line (``cartrecovery ...``): stores, secrets, reports, explain, and a signing client."""
