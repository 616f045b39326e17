"""avhub driver and simulator for the Acme RB relay box."""
