"""The generic driver: any device whose text or binary protocol is described in YAML."""
