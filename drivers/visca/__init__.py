"""Sony VISCA PTZ cameras, over IP (UDP 52381, 8-byte header) and over RS-232."""
