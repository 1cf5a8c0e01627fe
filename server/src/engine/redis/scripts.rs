//! Lua scripts: each runs atomically in Redis, so that assigning an offset,
//! storing the event and publishing it happen as one step. That keeps a
//! room's events in offset order for every subscriber, whichever instance
//! appended them.

use std::sync::LazyLock;

use redis::Script;

/// Stores an event in the room's stream (with `extra` fields: see
/// `SNAPSHOT`), trims the stream by count and age, forgets messages that
/// left the stream and deletes whose own event did (not before: the
/// message's edits may still be in it), and publishes the frame. Prepended
/// to the scripts that append.
const APPEND: &str = r#"
local function append(log, msgs, idx, deleted, channel, offset, frame, max_events, min_id, exclude, extra)
  redis.call('XADD', log, 'MAXLEN', max_events, '*', 'o', offset, 'e', frame, unpack(extra))
  redis.call('XTRIM', log, 'MINID', min_id)
  local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
  local first = offset + 1
  if #oldest > 0 then first = tonumber(oldest[1][2][2]) end
  local gone = redis.call('ZRANGEBYSCORE', idx, '-inf', '(' .. first)
  for i = 1, #gone do redis.call('HDEL', msgs, gone[i]) end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. first) end
  redis.call('ZREMRANGEBYSCORE', deleted, '-inf', '(' .. first)
  redis.call('PUBLISH', channel, offset .. '\t' .. exclude .. '\t' .. frame)
end
"#;

/// KEYS: seq, log, msgs, idx, idempotency key, deleted.
/// ARGV: channel, frame before the offset, frame after it, message id,
/// max events, min stream id, idempotency ttl (s), exclude.
/// Returns {1, id, offset} for a new message, {0, id, offset} for a repeat.
const APPEND_MESSAGE: &str = r#"
local prior = redis.call('GET', KEYS[5])
if prior then
  local id, offset = string.match(prior, '^(%S+) (%d+)$')
  return {0, id, tonumber(offset)}
end
local offset = redis.call('INCR', KEYS[1])
local frame = ARGV[2] .. offset .. ARGV[3]
redis.call('HSET', KEYS[3], ARGV[4], frame)
redis.call('ZADD', KEYS[4], offset, ARGV[4])
redis.call('SET', KEYS[5], ARGV[4] .. ' ' .. offset, 'EX', ARGV[7])
append(KEYS[2], KEYS[3], KEYS[4], KEYS[6], ARGV[1], offset, frame, ARGV[5], ARGV[6], ARGV[8], {'m', ARGV[4]})
return {1, ARGV[4], offset}
"#;

/// Edits or deletes a message the caller read and changed (a deleted one
/// stays as what it leaves: see `ChatMessage::delete`): stored only if it
/// is still as read, so the message is never decoded and re-encoded here
/// (Lua's cjson would turn `[]` into `{}` and round numbers in its `data`).
/// An edit's entry names its message (`m`) and keeps what a replay gives
/// instead once the message is deleted (`r`, a `message_deleted` at the
/// edit's offset); a delete adds the message to the room's deleted ones,
/// scored by the delete's offset.
/// KEYS: seq, log, msgs, idx, deleted.
/// ARGV: channel, frame before the offset, frame after it, message id,
/// max events, min stream id, the message as read, the changed message,
/// and for an edit the `message_deleted` before and after the offset ('' and
/// '' for a delete).
/// Returns {1, offset}, {-1, 0} when there is no such message, {-3, 0}
/// when it changed since it was read.
const APPEND_CHANGE: &str = r#"
local stored = redis.call('HGET', KEYS[3], ARGV[4])
if not stored then return {-1, 0} end
if stored ~= ARGV[7] then return {-3, 0} end
local offset = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[8])
local extra = {}
if ARGV[9] ~= '' then
  extra = {'m', ARGV[4], 'r', ARGV[9] .. offset .. ARGV[10]}
else
  redis.call('ZADD', KEYS[5], offset, ARGV[4])
end
append(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], offset, ARGV[2] .. offset .. ARGV[3], ARGV[5], ARGV[6], '', extra)
return {1, offset}
"#;

/// A replay never gives a deleted message's content (see
/// `RoomEvent::erase`): an entry of a message (`m`) among the room's
/// deleted ones is replayed as its trace from `msgs`, or as its `r` for an
/// edit. Stream entries cannot change in place, so the text stays in the
/// stream until it leaves by count or age: rewriting the stream at each
/// delete cost 2.8 ms of Redis per delete with 1,000 entries, and looking
/// each replayed message up in `msgs` made a recovery of 1,000 events a
/// third slower (2.0 to 2.7 ms); the deleted ids cost nothing while the
/// window holds no deleted message.
/// KEYS: epoch, seq, log, msgs, idx, deleted.
/// ARGV: a fresh epoch (used if the room has none), since epoch ('' for
/// none), since offset, number of latest messages.
/// Returns {epoch, last offset, recovered (-1 not asked, 0, 1), frames}.
const SNAPSHOT: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local recovered = -1
local events = {}
if ARGV[2] ~= '' then
  local since = tonumber(ARGV[3])
  recovered = 0
  if ARGV[2] == epoch and since <= last then
    local count = last - since
    if count == 0 then
      recovered = 1
    else
      local entries = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', count)
      if #entries == count and tonumber(entries[count][2][2]) == since + 1 then
        recovered = 1
        local deleted = {}
        for _, id in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do deleted[id] = true end
        for i = count, 1, -1 do
          local fields = entries[i][2]
          local frame = fields[4]
          if fields[6] and deleted[fields[6]] then
            frame = fields[8] or redis.call('HGET', KEYS[4], fields[6]) or frame
          end
          events[#events + 1] = frame
        end
      end
    end
  end
end
local latest = tonumber(ARGV[4])
if recovered ~= 1 and latest > 0 then
  local ids = redis.call('ZREVRANGE', KEYS[5], 0, latest - 1)
  for i = #ids, 1, -1 do
    local m = redis.call('HGET', KEYS[4], ids[i])
    if m then events[#events + 1] = m end
  end
end
return {epoch, last, recovered, events}
"#;

/// KEYS: msgs, idx. ARGV: before offset ('' for none), limit.
/// Returns up to limit + 1 messages, newest first.
const HISTORY: &str = r#"
local max = '+inf'
if ARGV[1] ~= '' then max = '(' .. ARGV[1] end
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], max, '-inf', 'LIMIT', 0, tonumber(ARGV[2]) + 1)
local out = {}
for i = 1, #ids do
  local m = redis.call('HGET', KEYS[1], ids[i])
  if m then out[#out + 1] = m end
end
return out
"#;

/// Keeps a reader's position: forward only, and only for a message still in
/// the room's index (whose offset says which is later); past `max` readers
/// the one who read earliest is forgotten.
/// KEYS: idx, reads, readers. ARGV: user id, message id, receipt JSON,
/// read_at (ms), max readers.
/// Returns 1 when kept, 0 when not (unknown message, or not later).
const KEEP_READ: &str = r#"
local offset = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not offset then return 0 end
offset = tonumber(offset)
local kept = redis.call('HGET', KEYS[2], ARGV[1])
if kept then
  if tonumber(string.match(kept, '^(%d+) ')) >= offset then return 0 end
elseif redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then
  local earliest = redis.call('ZPOPMIN', KEYS[3])
  redis.call('HDEL', KEYS[2], earliest[1])
end
redis.call('HSET', KEYS[2], ARGV[1], offset .. ' ' .. ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"#;

/// KEYS: reads, readers. ARGV: limit.
/// Returns the receipts of the latest `limit` readers, latest first.
const READS: &str = r#"
local users = redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)
local out = {}
for i = 1, #users do
  local kept = redis.call('HGET', KEYS[1], users[i])
  if kept then out[#out + 1] = string.match(kept, '^%d+ (.*)$') end
end
return out
"#;

/// A member's entries in a room's list order (`RoomKeys::order`): takes
/// out both visibilities of the member whose stored profile is `profile`,
/// and puts it back with `hidden` ('0' or '1') unless that is nil. Each
/// call touches one member: a join, leave or status change costs the same
/// in a room of ten or of ten thousand.
const ORDER: &str = r#"
local function reorder(order, profile, id, hidden)
  local name = cjson.decode(profile).name
  redis.call('ZREM', order, '0' .. name .. '\0' .. id, '1' .. name .. '\0' .. id)
  if hidden then redis.call('ZADD', order, 0, hidden .. name .. '\0' .. id) end
end
"#;

/// A name from data inside a key, as `keys.rs` writes it (`part`).
const PART: &str = r#"
local function part(name) return #name .. ':' .. name end
"#;

/// KEYS: room members, room profiles, user rooms, instance members, room
/// order, user state.
/// ARGV: user id, profile JSON, room, '<room> <user>'.
/// Returns {the user's connection count in the room (1 for the first), the
/// room's member count}.
const ADD_MEMBER: &str = r#"
redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
  local hidden = '0'
  if redis.call('HGET', KEYS[6], 'status') == 'invisible' then hidden = '1' end
  reorder(KEYS[5], ARGV[2], ARGV[1], hidden)
end
return {n, redis.call('HLEN', KEYS[1])}
"#;

/// KEYS and ARGV as ADD_MEMBER (the profile unused).
/// Returns {1 when that was the user's last connection in the room, the
/// room's member count (1 when nothing changed)}.
const REMOVE_MEMBER: &str = r#"
local mine = tonumber(redis.call('HGET', KEYS[4], ARGV[4]) or '0')
if mine <= 0 then return {0, 1} end
if mine == 1 then redis.call('HDEL', KEYS[4], ARGV[4]) else redis.call('HINCRBY', KEYS[4], ARGV[4], -1) end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then
  local profile = redis.call('HGET', KEYS[2], ARGV[1])
  if profile then reorder(KEYS[5], profile, ARGV[1], nil) end
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[3])
  return {1, redis.call('HLEN', KEYS[1])}
end
return {0, 1}
"#;

/// KEYS: user state, user rooms, online users, user conns.
/// ARGV: user id, status, '1' with a custom text or '0', the custom text.
/// Sets the status and sorts the user again in each of its rooms (looking
/// offline when invisible), and in or out of the online list. Touches room
/// keys named from the data (single Redis only), built as `keys.rs` builds
/// them.
const SET_STATUS: &str = r#"
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[2] == 'invisible' then
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif count(KEYS[4], '') > 0 then
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'custom', ARGV[4]) else redis.call('HDEL', KEYS[1], 'custom') end
local hidden = '0'
if ARGV[2] == 'invisible' then hidden = '1' end
for _, room in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local prefix = 'rc:r:' .. part(room) .. ':'
  local profile = redis.call('HGET', prefix .. 'profiles', ARGV[1])
  if profile then reorder(prefix .. 'order', profile, ARGV[1], hidden) end
end
return 1
"#;

/// Sums a user's connection counts (fields starting with `prefix`, or all).
const COUNT: &str = r#"
local function count(key, prefix)
  local t = redis.call('HGETALL', key)
  local total = 0
  for i = 1, #t, 2 do
    if prefix == '' or string.sub(t[i], 1, #prefix) == prefix then total = total + tonumber(t[i + 1]) end
  end
  return total
end
"#;

/// KEYS: user conns, user state, user unread, instance users, online users.
/// ARGV: instance, user id.
/// Returns {connections before, unread notifications, state hash}.
/// The state is kept while the user is online (see `EXPIRE`).
const OPEN: &str = r#"
local before = count(KEYS[1], '')
redis.call('PERSIST', KEYS[2])
redis.call('HINCRBY', KEYS[1], 'o:' .. ARGV[1], 1)
redis.call('SADD', KEYS[4], ARGV[2])
if redis.call('HGET', KEYS[2], 'status') ~= 'invisible' then redis.call('ZADD', KEYS[5], 0, ARGV[2]) end
local unread = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
return {before, unread, redis.call('HGETALL', KEYS[2])}
"#;

/// KEYS: user conns, user state, instance users, online users.
/// ARGV: instance, user id, now (RFC 3339), idle (s).
/// Returns {1, state} when the user has no connection left, else {0, {}}:
/// always two elements, the shape the caller decodes. The state of a user
/// gone offline expires after `idle`, unless they come back.
const EXPIRE: &str = r#"
local l = redis.call('HINCRBY', KEYS[1], 'l:' .. ARGV[1], -1)
if l <= 0 then redis.call('HDEL', KEYS[1], 'l:' .. ARGV[1]) end
local o = tonumber(redis.call('HGET', KEYS[1], 'o:' .. ARGV[1]) or '0')
if o <= 0 and l <= 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
if count(KEYS[1], '') > 0 then return {0, {}} end
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[2], 'last_seen', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {1, redis.call('HGETALL', KEYS[2])}
"#;

/// KEYS: user conns, user unread.
/// ARGV: channel, notification frame, notification JSON, unread cap,
/// unread byte cap, max age (s).
/// Publishes when the user has an open connection (returns 1), else keeps
/// it as unread (returns 0): the newest within the count and byte caps (one
/// over the byte cap alone is not kept), the list expiring `max age` after
/// the newest (the reader drops older ones by their `created_at`).
const NOTIFY: &str = r#"
if count(KEYS[1], 'o:') > 0 then
  redis.call('PUBLISH', ARGV[1], '\t\t' .. ARGV[2])
  return 1
end
local cap, byte_cap = tonumber(ARGV[4]), tonumber(ARGV[5])
if cap > 0 and #ARGV[3] <= byte_cap then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], -cap, -1)
  local kept = redis.call('LRANGE', KEYS[2], 0, -1)
  local bytes = 0
  for i = 1, #kept do bytes = bytes + #kept[i] end
  local i = 1
  while bytes > byte_cap do
    bytes = bytes - #kept[i]
    redis.call('LPOP', KEYS[2])
    i = i + 1
  end
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return 0
"#;

/// KEYS: the dead instance's lease, members, users; the instance set; the
/// online users.
/// ARGV: instance, now (RFC 3339), idle (s).
/// Undoes what a dead instance left: its connections and memberships.
/// Returns {{user, state, rooms}... offline users, {room, user, profile,
/// vacated}... left}; `profile` is false for a member without one, and
/// `vacated` 1 when the room has no member left.
/// Touches user and room keys named from the data (single Redis only),
/// built as `keys.rs` builds them.
const REAP: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {{}, {}} end
local offline = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local conns = 'rc:u:' .. part(user) .. ':conns'
  redis.call('HDEL', conns, 'o:' .. ARGV[1], 'l:' .. ARGV[1])
  if count(conns, '') <= 0 then
    redis.call('ZREM', KEYS[5], user)
    local state = 'rc:u:' .. part(user) .. ':state'
    redis.call('HSET', state, 'last_seen', ARGV[2])
    redis.call('EXPIRE', state, ARGV[3])
    local rooms = redis.call('SMEMBERS', 'rc:u:' .. part(user) .. ':rooms')
    offline[#offline + 1] = {user, redis.call('HGETALL', state), rooms}
  end
end
local left = {}
local members = redis.call('HGETALL', KEYS[2])
for i = 1, #members, 2 do
  local room, user = string.match(members[i], '^(%S+) (%S+)$')
  local key = 'rc:r:' .. part(room) .. ':members'
  if redis.call('HINCRBY', key, user, -tonumber(members[i + 1])) <= 0 then
    local profiles = 'rc:r:' .. part(room) .. ':profiles'
    local profile = redis.call('HGET', profiles, user)
    if profile then reorder('rc:r:' .. part(room) .. ':order', profile, user, nil) end
    redis.call('HDEL', key, user)
    redis.call('HDEL', profiles, user)
    redis.call('SREM', 'rc:u:' .. part(user) .. ':rooms', room)
    local vacated = 0
    if redis.call('HLEN', key) == 0 then vacated = 1 end
    left[#left + 1] = {room, user, profile or false, vacated}
  end
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
return {offline, left}
"#;

fn script(parts: &[&str]) -> Script {
    Script::new(&parts.concat())
}

pub(super) static APPEND_MESSAGE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[APPEND, APPEND_MESSAGE]));
pub(super) static APPEND_CHANGE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[APPEND, APPEND_CHANGE]));
pub(super) static SNAPSHOT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[SNAPSHOT]));
pub(super) static HISTORY_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[HISTORY]));
pub(super) static KEEP_READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[KEEP_READ]));
pub(super) static READS_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[READS]));
pub(super) static ADD_MEMBER_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[ORDER, ADD_MEMBER]));
pub(super) static REMOVE_MEMBER_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[ORDER, REMOVE_MEMBER]));
pub(super) static SET_STATUS_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[PART, ORDER, COUNT, SET_STATUS]));
pub(super) static OPEN_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[COUNT, OPEN]));
pub(super) static EXPIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[COUNT, EXPIRE]));
pub(super) static NOTIFY_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(&[COUNT, NOTIFY]));
pub(super) static REAP_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(&[PART, ORDER, COUNT, REAP]));
