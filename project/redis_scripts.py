"""Greenroom's own Lua scripts for the Redis broker: enqueue with priorities, requeue, acks of many
messages, doorbells.

They work on Dramatiq 2.2.1's keys (see `dramatiq/brokers/redis/dispatch.lua`) and add one per queue:

    <ns>:<q>.bell   the queue's doorbell: a list holding at most one token. Every script that puts
                    a message on <ns>:<q> rings it; an idle consumer blocks on it (BLPOP).

A message id (Dramatiq's `redis_message_id`) is a plain UUID for an ordinary message and
`<priority>|<uuid>` for an urgent one, so that a script reads a waiting message's priority from the
list itself. Ordering rule (`place`): an ordinary message goes to the tail (RPUSH, as Dramatiq does);
an urgent one goes before the first waiting message, counted from the head, that is ordinary or has a
greater priority number. Urgent messages thus form a run at the head of the list, most urgent first,
first-in first-out among equal priorities; the scan costs one step per urgent message waiting.
"""

from __future__ import annotations

# Shared Lua: the priority of a message id, placing a message, ringing a doorbell.
_LIBRARY = """
local function priority_of(id)
    local bar = string.find(id, "|", 1, true)
    if bar then
        return tonumber(string.sub(id, 1, bar - 1))
    end
    return nil
end

local function place(queue, id, priority)
    if priority == nil then
        redis.call("rpush", queue, id)
        return
    end
    local start = 0
    while true do
        local chunk = redis.call("lrange", queue, start, start + 99)
        for i = 1, #chunk do
            local other = priority_of(chunk[i])
            if other == nil or other > priority then
                redis.call("linsert", queue, "BEFORE", chunk[i], id)
                return
            end
        end
        if #chunk < 100 then
            break
        end
        start = start + 100
    end
    redis.call("rpush", queue, id)
end

local function ring(bell)
    redis.call("lpush", bell, "1")
    redis.call("ltrim", bell, 0, 0)
end
"""

# enqueue(keys=[queue, queue.msgs, queue.bell], args=[id1, data1, id2, data2, ...])
# Dramatiq's "enqueue" command (HSET + RPUSH) for any number of messages, each placed by its
# priority, then one ring. A run of urgent messages of one priority is placed after its
# predecessor (LINSERT AFTER) instead of scanning again: bulk urgent enqueues stay linear in scans.
ENQUEUE = _LIBRARY + """
local queue, messages, bell = KEYS[1], KEYS[2], KEYS[3]
local last_id, last_priority = nil, nil
for i = 1, #ARGV, 2 do
    local id = ARGV[i]
    redis.call("hset", messages, id, ARGV[i + 1])
    local priority = priority_of(id)
    if priority ~= nil and priority == last_priority
        and redis.call("linsert", queue, "AFTER", last_id, id) > 0 then
        last_id = id
    else
        place(queue, id, priority)
        last_id, last_priority = id, priority
    end
end
if #ARGV > 0 then
    ring(bell)
end
"""

# requeue(keys=[queue, queue.msgs, acks of this broker for queue, queue.bell], args=[id, ...])
# Dramatiq's "requeue" command (messages prefetched but not processed go back on shutdown), except
# that an urgent message goes back to its place by priority, and the doorbell rings.
REQUEUE = _LIBRARY + """
local queue, messages, acks, bell = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local requeued = 0
for i = 1, #ARGV do
    local id = ARGV[i]
    if redis.call("srem", acks, id) > 0 and redis.call("hexists", messages, id) > 0 then
        place(queue, id, priority_of(id))
        requeued = requeued + 1
    end
end
if requeued > 0 then
    ring(bell)
end
return requeued
"""

# ack_many(keys=[heartbeats, acks of this broker for queue, queue.msgs], args=[timestamp, broker id, id, ...])
# Dramatiq's "ack" command (heartbeat, then per message: SREM from the broker's acks, HDEL its data)
# for any number of messages: held acks settled together go in one call.
ACK_MANY = """
local heartbeats, acks, messages = KEYS[1], KEYS[2], KEYS[3]
redis.call("zadd", heartbeats, ARGV[1], ARGV[2])
local acked = 0
for i = 3, #ARGV do
    if redis.call("srem", acks, ARGV[i]) > 0 then
        redis.call("hdel", messages, ARGV[i])
        acked = acked + 1
    end
end
return acked
"""

# ring_if_waiting(keys=[queue, queue.bell]): after a fetch that may have left messages behind,
# wake the next idle consumer if it did.
RING_IF_WAITING = _LIBRARY + """
if redis.call("llen", KEYS[1]) > 0 then
    ring(KEYS[2])
    return 1
end
return 0
"""

# ring_back(keys=[queue.bell]): a listener whose consumer stopped waiting hands its token back.
RING = _LIBRARY + """
ring(KEYS[1])
"""

SCRIPTS = {
    "ack_many": ACK_MANY,
    "enqueue": ENQUEUE,
    "requeue": REQUEUE,
    "ring_if_waiting": RING_IF_WAITING,
    "ring": RING,
}
