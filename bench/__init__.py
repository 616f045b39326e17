"""avhub benchmarks: scenarios, the baseline server, device and panel-client processes."""
