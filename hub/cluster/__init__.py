"""Scale-out (`hub.store: redis://…`): several hub processes share one building over Redis.

- `settings`: the `hub.cluster` section (node id, lease TTL, command timeout).
- `scripts`: Redis key names and the Lua scripts that commit, lease and register nodes.
- `node`: one hub's link to Redis: the ordered commit pipeline, the change reader that feeds
  every room's mirror (published changes, the streams to catch up), availability and
  recovery with backoff.
- `store`: `RedisStore`, a room's state mirrored from Redis (the `RoomStore` of a cluster).
- `ownership`: one owner per device, by leases with fencing tokens, spread over live hubs.
- `commands`: commands from any hub reach the device's owner over Redis pub/sub.
- `placement`: what a `Room` asks of the cluster (start devices when owned, route commands).
"""
