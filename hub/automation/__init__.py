"""Room automation: macros, schedules and triggers, and the virtual `room` device.

- `conditions`: the condition language of `wait_until` and triggers (parser, evaluator).
- `clock`: the injectable clock everything here waits on; time zones.
- `models`: the `macros`, `schedules` and `triggers` sections of a room, as typed models.
- `check`: what `avhub check` finds wrong in them beyond their shape (unknown devices,
  actions, args, macros; cycles).
- `macros`: running a macro's steps against the room's devices.
- `device`: `RoomDevice`, the `room` device a room's panels see; schedules and triggers.
"""
