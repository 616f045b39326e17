"""Redis key names and the Lua scripts a cluster runs: each is one atomic round trip.

A room's keys share the hash tag `{<room id>}`:

- `avhub:{r}:meta`  hash: `epoch`, `seq` (the last committed change)
- `avhub:{r}:state` hash: `<device>/<key>` → the key's value as JSON
- `avhub:{r}:log`   stream: the replay ring, entry id `<seq>-0`, fields `e` (epoch), `d`
  (device), `s` (the change's state as JSON), `t` (commit time), and for a description
  change `a` (`{"actions": name → schema id, "schemas": id → schema}` as JSON)
- `avhub:{r}:actions` hash: `<device>` → its last description change's `a`
- `avhub:{r}:changes`: the pub/sub channel every committed change is also published on,
  as lines: `<seq>`, `<epoch>`, `<device>`, `<t>`, `<s>` and, for a description change, `<a>`
- `avhub:{r}:lease:<device>`: `<node id>|<fencing token>` of the device's owner, with a TTL
- `avhub:{r}:fence`: the counter fencing tokens are drawn from

and the cluster's `avhub:nodes` is a sorted set of live hubs scored by when they expire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

PREFIX = "avhub:"
NODES = f"{PREFIX}nodes"


def instance_key(node_id: str) -> str:
    """The process running as `node_id` (a random token, renewed each tick with the TTL)."""
    return f"{PREFIX}node:{node_id}:instance"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """The Redis keys of one room."""

    meta: str
    state: str
    log: str
    actions: str
    fence: str
    lease_prefix: str
    changes: str  # the pub/sub channel of the room's commits (not a key)

    @classmethod
    def of(cls, room_id: str) -> RoomKeys:
        base = f"{PREFIX}{{{room_id}}}"
        return cls(
            f"{base}:meta",
            f"{base}:state",
            f"{base}:log",
            f"{base}:actions",
            f"{base}:fence",
            f"{base}:lease:",
            f"{base}:changes",
        )

    def lease(self, device_id: str) -> str:
        return self.lease_prefix + device_id


def channel(node_id: str) -> str:
    """The pub/sub channel a hub takes forwarded commands and their replies on."""
    return f"{PREFIX}node:{node_id}"


# KEYS meta state log actions; ARGV new_epoch. Creates the room's epoch when Redis has none
# (first start, or Redis lost the room), then returns {epoch, seq, state as field/value
# pairs, log, descriptions as device/description pairs}.
OPEN = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', 0)
  epoch = ARGV[1]
end
local seq = redis.call('HGET', KEYS[1], 'seq')
return {epoch, seq, redis.call('HGETALL', KEYS[2]), redis.call('XRANGE', KEYS[3], '-', '+'),
  redis.call('HGETALL', KEYS[4])}
"""

# KEYS meta state log actions; ARGV epoch. Ends the room's epoch `epoch` (Redis went back
# in time: a replica that missed changes took over), so that the next OPEN starts a new one.
END = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
end
return 1
"""

# KEYS meta state log lease changes; ARGV epoch fence maxlen ts device change_json key1 value1 ...
# The change goes into the log and out on the `changes` channel. Returns the change's seq; -1 when the room's epoch is not `epoch` (Redis lost the room),
# -2 when `fence` no longer holds the device's lease (its writer is not the owner).
COMMIT = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[4]) ~= ARGV[2] then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local fields = {}
for i = 7, #ARGV, 2 do
  fields[#fields + 1] = ARGV[5] .. '/' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
if #fields > 0 then redis.call('HSET', KEYS[2], unpack(fields)) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], seq .. '-0',
  'e', ARGV[1], 'd', ARGV[5], 's', ARGV[6], 't', ARGV[4])
redis.call('PUBLISH', KEYS[5], seq .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[4]
  .. '\\n' .. ARGV[6])
return seq
"""

# KEYS meta log lease actions changes; ARGV epoch fence maxlen ts device description_json. A
# description change (new action schemas): numbered and kept like COMMIT's, with the same
# answers; the description is also the device's entry in `actions` for hubs that load later.
DESCRIBE = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0',
  'e', ARGV[1], 'd', ARGV[5], 's', '{}', 't', ARGV[4], 'a', ARGV[6])
redis.call('PUBLISH', KEYS[5], seq .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[4]
  .. '\\n{}\\n' .. ARGV[6])
return seq
"""

# KEYS state actions; ARGV device. Deletes the device's state keys and description (it left
# the room); returns how many state keys went.
FORGET = """
local prefix = ARGV[1] .. '/'
local gone = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #prefix) == prefix then gone[#gone + 1] = field end
end
if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
redis.call('HDEL', KEYS[2], ARGV[1])
return #gone
"""

# KEYS nodes; ARGV node ttl_ms. Registers the node as live for ttl_ms (Redis's clock),
# forgets expired nodes, and returns the live ones.
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS lease fence; ARGV node ttl_ms previous. A free lease is taken with a new fencing token:
# returns `<node>|<token>`, or false when another node holds it. A lease still held as
# `previous` (this node's, dropped here when Redis did not answer in time) is taken back.
ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  if current ~= ARGV[3] then return false end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
local holder = ARGV[1] .. '|' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], holder, 'PX', ARGV[2])
return holder
"""

# KEYS lease; ARGV holder ttl_ms. 1 when the lease is still `holder`'s and now runs ttl_ms.
RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS lease; ARGV holder ttl_ms. After Redis lost a room: the lease is `holder`'s again
# unless another node took it since. 1 when it is, 0 when not.
RECLAIM = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS lease; ARGV holder. Frees the lease if `holder` still has it.
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


class Scripts:
    """The scripts, loaded once per Redis server (again after a restart) and run by SHA."""

    SOURCES = {
        "open": OPEN,
        "end": END,
        "commit": COMMIT,
        "describe": DESCRIBE,
        "forget": FORGET,
        "heartbeat": HEARTBEAT,
        "acquire": ACQUIRE,
        "renew": RENEW,
        "reclaim": RECLAIM,
        "release": RELEASE,
    }

    def __init__(self) -> None:
        self._sha: dict[str, str] = {}

    async def load(self, redis: Redis) -> None:
        for name, source in self.SOURCES.items():
            self._sha[name] = await redis.script_load(source)

    def run(
        self,
        client: Redis | Pipeline,
        name: str,
        keys: Sequence[str],
        args: Sequence[Any],
    ) -> Any:
        """EVALSHA `name`: an awaitable on a client, queued (returning the pipeline) on one."""
        return client.evalsha(self._sha[name], len(keys), *keys, *args)
