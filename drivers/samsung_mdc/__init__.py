"""Samsung MDC (Multiple Display Control) displays over TCP 1515 or RS-232."""
