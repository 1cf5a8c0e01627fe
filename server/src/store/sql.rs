//! The SQL both stores run: one text for SQLite and PostgreSQL (`$n`
//! parameters, `ON CONFLICT`, `RETURNING`), expanded for each backend's
//! pool type by [`sql_store!`]. Every value from a user is a bound
//! parameter.

/// Implements [`Store`](super::Store) for `$store`, whose field `pool` is a
/// `sqlx::Pool<$db>`, whose field `rooms` is its [`StoredRooms`] and whose
/// `begin_write` starts a writing transaction; `$lock` ends a read whose rows the transaction then writes (PostgreSQL
/// locks them with `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` already did),
/// and `$insert` begins the multi-row inserts of a batch.
///
/// SQLite's is `INSERT OR FAIL INTO`: a row that fails ends the statement
/// without undoing the rows before it, so SQLite keeps no statement
/// journal for it (a copy of every page the statement changes, kept until
/// it ends: 8% of the SQLite threads' time in the mesh benchmark). Nothing
/// is kept half done: an error rolls the whole transaction back.
macro_rules! sql_store {
    ($store:ty, $db:ty, $lock:expr, $insert:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn close(&self) {
                self.close_pools().await
            }

            async fn append_recorded(
                &self,
                batch: &[$crate::store::NewEvent],
                outbox: &dyn $crate::store::outbox::EventRows,
            ) -> Result<Vec<$crate::store::Outcome>, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let mut outcomes = Vec::with_capacity(batch.len());
                let mut created = Vec::new();
                // Chunks keep each statement's parameters within SQLite's
                // limit; a later chunk reads what the earlier ones wrote.
                for chunk in batch.chunks($crate::store::sql::CHUNK) {
                    let known = $crate::store::sql::read_known!(
                        tx, $db, $insert, chunk, self.rooms, created
                    );
                    let mut plan = $crate::store::plan::plan(chunk, known);
                    // The webhook events first: a delete in the plan erases
                    // those of its message, this batch's included.
                    let mut rows = Vec::new();
                    for (event, at) in &plan.events {
                        outbox.rows_for(event, *at, &mut rows);
                    }
                    $crate::store::outbox::insert_rows!(tx, $db, rows);
                    $crate::store::sql::write_plan!(tx, $db, $insert, plan);
                    outcomes.append(&mut plan.outcomes);
                }
                tx.commit().await?;
                self.rooms.committed(created);
                outbox.committed();
                Ok(outcomes)
            }

            async fn head(
                &self,
                room: &roomcast_shared::RoomName,
            ) -> Result<roomcast_shared::Position, $crate::store::StoreError> {
                use sqlx::Row as _;
                // A read, never a write: joining a room that has no events
                // yet stores nothing.
                let row = sqlx::query(
                    "SELECT (SELECT value FROM meta WHERE key = 'epoch'), \
                     COALESCE((SELECT latest FROM rooms WHERE room = $1), 0)",
                )
                .bind(room.as_str())
                .fetch_one(&self.pool)
                .await?;
                Ok(roomcast_shared::Position {
                    epoch: row.try_get(0)?,
                    offset: $crate::store::from_db(row.try_get(1)?),
                })
            }

            async fn events_after(
                &self,
                room: &roomcast_shared::RoomName,
                offset: u64,
                limit: usize,
            ) -> Result<Vec<roomcast_shared::RoomEvent>, $crate::store::StoreError> {
                use sqlx::Row as _;
                // A message's `message` event is its row of `messages`,
                // unless `events` holds its offset (see migration 0007).
                // Offsets are dense, so bounding every part by `pos` keeps
                // the read to `limit` rows whichever plan each database
                // picks (PostgreSQL may hash the anti-join's events).
                let rows = sqlx::query(
                    "SELECT pos, body, NULL AS deleted FROM events \
                     WHERE room = $1 AND pos > $2 AND pos <= $3 \
                     UNION ALL \
                     SELECT pos, COALESCE(sent, body), deleted FROM messages AS m \
                     WHERE room = $1 AND pos > $2 AND pos <= $3 AND NOT EXISTS \
                     (SELECT 1 FROM events AS e WHERE e.room = $1 AND e.pos = m.pos \
                      AND e.pos > $2 AND e.pos <= $3) \
                     ORDER BY pos",
                )
                .bind(room.as_str())
                .bind($crate::store::to_db(offset))
                .bind($crate::store::to_db(offset.saturating_add(limit as u64)))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let body = row.try_get::<&str, _>(1)?;
                        Ok(match row.try_get::<Option<bool>, _>(2)? {
                            None => serde_json::from_str(body)?,
                            // A message's row: its `message` event, or the
                            // trace once deleted.
                            Some(deleted) => {
                                let mut message: roomcast_shared::ChatMessage =
                                    serde_json::from_str(body)?;
                                if deleted {
                                    message.delete();
                                }
                                roomcast_shared::RoomEvent::Message(message)
                            }
                        })
                    })
                    .collect()
            }

            async fn messages_before(
                &self,
                room: &roomcast_shared::RoomName,
                before: Option<u64>,
                limit: usize,
            ) -> Result<Vec<roomcast_shared::ChatMessage>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT body, deleted FROM messages WHERE room = $1 AND pos < $2 \
                     ORDER BY pos DESC LIMIT $3",
                )
                .bind(room.as_str())
                .bind(before.map_or(i64::MAX, $crate::store::to_db))
                .bind($crate::store::to_db(limit as u64))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .rev()
                    .map(|row| {
                        let mut message: roomcast_shared::ChatMessage =
                            serde_json::from_str(row.try_get::<&str, _>(0)?)?;
                        // The column decides: rows deleted before deletes
                        // emptied the body still hold the content.
                        if row.try_get::<bool, _>(1)? {
                            message.delete();
                        }
                        Ok(message)
                    })
                    .collect()
            }

            async fn set_reads(
                &self,
                marks: &[$crate::store::ReadMark],
            ) -> Result<(), $crate::store::StoreError> {
                use time::format_description::well_known::Rfc3339;
                let mut tx = self.pool.begin().await?;
                for mark in marks {
                    if !$crate::store::valid_key(&mark.user_id)
                        || !$crate::store::valid_key(&mark.id)
                    {
                        continue;
                    }
                    let read_at = mark.read_at.format(&Rfc3339).unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO read_positions (user_id, room, pos, id, read_at, at) \
                         SELECT $1, room, pos, id, $4, $5 FROM messages \
                         WHERE room = $2 AND id = $3 \
                         ON CONFLICT (user_id, room) DO UPDATE SET pos = excluded.pos, \
                         id = excluded.id, read_at = excluded.read_at, at = excluded.at \
                         WHERE excluded.pos > read_positions.pos",
                    )
                    .bind(mark.user_id.as_str())
                    .bind(mark.room.as_str())
                    .bind(mark.id.as_str())
                    .bind(read_at)
                    .bind($crate::store::millis(mark.read_at))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn read(
                &self,
                user: &str,
                room: &roomcast_shared::RoomName,
            ) -> Result<u64, $crate::store::StoreError> {
                $crate::store::check_user(user)?;
                let pos: Option<i64> = sqlx::query_scalar(
                    "SELECT pos FROM read_positions WHERE user_id = $1 AND room = $2",
                )
                .bind(user)
                .bind(room.as_str())
                .fetch_optional(&self.pool)
                .await?;
                Ok(pos.map_or(0, $crate::store::from_db))
            }

            async fn reads(
                &self,
                room: &roomcast_shared::RoomName,
                limit: usize,
            ) -> Result<Vec<roomcast_shared::ReadReceipt>, $crate::store::StoreError> {
                use sqlx::Row as _;
                use time::format_description::well_known::Rfc3339;
                let rows = sqlx::query(
                    "SELECT user_id, id, read_at FROM read_positions WHERE room = $1 \
                     ORDER BY at DESC, user_id LIMIT $2",
                )
                .bind(room.as_str())
                .bind($crate::store::to_db(limit as u64))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let read_at: &str = row.try_get(2)?;
                        Ok(roomcast_shared::ReadReceipt {
                            user_id: row.try_get(0)?,
                            id: row.try_get(1)?,
                            read_at: time::OffsetDateTime::parse(read_at, &Rfc3339)
                                .map_err(|err| sqlx::Error::Decode(Box::new(err)))?,
                        })
                    })
                    .collect()
            }

            async fn keep_notification(
                &self,
                user: &str,
                notification: &roomcast_shared::Notification,
                caps: &$crate::store::UnreadCaps,
            ) -> Result<bool, $crate::store::StoreError> {
                $crate::store::check_user(user)?;
                let body = serde_json::to_string(notification)?;
                if caps.count == 0 || body.len() > caps.bytes {
                    return Ok(false);
                }
                let now = time::OffsetDateTime::now_utc();
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO notifications (user_id, at, bytes, body) VALUES ($1, $2, $3, $4)",
                )
                .bind(user)
                .bind($crate::store::millis(now))
                .bind($crate::store::to_db(body.len() as u64))
                .bind(&body)
                .execute(&mut *tx)
                .await?;
                // The newest within the count and the bytes stay; the rest,
                // and whatever expired, go.
                sqlx::query(
                    "DELETE FROM notifications WHERE user_id = $1 AND (at < $4 OR seq IN ( \
                       SELECT seq FROM ( \
                         SELECT seq, ROW_NUMBER() OVER (ORDER BY seq DESC) AS n, \
                                SUM(bytes) OVER (ORDER BY seq DESC) AS total \
                         FROM notifications WHERE user_id = $1) AS ranked \
                       WHERE n > $2 OR total > $3))",
                )
                .bind(user)
                .bind($crate::store::to_db(caps.count as u64))
                .bind($crate::store::to_db(caps.bytes as u64))
                .bind($crate::store::millis(now - caps.max_age))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn take_notifications(
                &self,
                user: &str,
                max_age: std::time::Duration,
            ) -> Result<Vec<roomcast_shared::Notification>, $crate::store::StoreError> {
                $crate::store::check_user(user)?;
                use sqlx::Row as _;
                let oldest = $crate::store::millis(time::OffsetDateTime::now_utc() - max_age);
                // Most users have none: a read tells, without the write lock
                // (SQLite has one writer, the committer among others). One
                // kept after it is left for the next take, as one kept after
                // the delete would be.
                let any = sqlx::query("SELECT 1 FROM notifications WHERE user_id = $1 LIMIT 1")
                    .bind(user)
                    .fetch_optional(&self.pool)
                    .await?;
                if any.is_none() {
                    return Ok(Vec::new());
                }
                // One statement: a notification kept meanwhile is either taken
                // now or left for the next take, never lost.
                let rows = sqlx::query(
                    "DELETE FROM notifications WHERE user_id = $1 RETURNING seq, at, body",
                )
                .bind(user)
                .fetch_all(&self.pool)
                .await?;
                let mut kept = rows
                    .iter()
                    .map(|row| {
                        Ok((
                            row.try_get::<i64, _>(0)?,
                            row.try_get::<i64, _>(1)?,
                            row.try_get::<String, _>(2)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                kept.retain(|(_, at, _)| *at >= oldest);
                kept.sort_by_key(|(seq, _, _)| *seq);
                kept.iter().map(|(_, _, body)| Ok(serde_json::from_str(body)?)).collect()
            }

            async fn prune(
                &self,
                events_before: Option<time::OffsetDateTime>,
                notifications_before: time::OffsetDateTime,
            ) -> Result<$crate::store::Pruned, $crate::store::StoreError> {
                let mut pruned = $crate::store::Pruned::default();
                if let Some(before) = events_before {
                    let before = $crate::store::millis(before);
                    pruned.events = $crate::store::sql::delete_in_steps!(
                        self,
                        "DELETE FROM events WHERE (room, pos) IN \
                         (SELECT room, pos FROM events WHERE at < $1 LIMIT $2)",
                        before
                    );
                    pruned.messages = $crate::store::sql::delete_in_steps!(
                        self,
                        "DELETE FROM messages WHERE (room, id) IN \
                         (SELECT room, id FROM messages WHERE at < $1 LIMIT $2)",
                        before
                    );
                }
                pruned.notifications = sqlx::query("DELETE FROM notifications WHERE at < $1")
                    .bind($crate::store::millis(notifications_before))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(pruned)
            }
        }

        impl $store {
            /// Finishes migrations `0006_erase` and `0008_webhook_erase`
            /// once, in Rust rather than SQL (PostgreSQL's JSON functions
            /// refuse the `\u0000` a text may hold): names each edit's
            /// message in `events.message_id` and each webhook event's in
            /// `webhook_outbox.message_id`, then erases what earlier
            /// versions kept of messages deleted before it: rows, events
            /// and webhook events. Pages of `CHUNK` rows keep
            /// memory bounded; the `erase` mark in `meta` goes in the same
            /// transaction, and instances starting together wait for it.
            async fn finish_erase_upgrade(&self) -> Result<(), $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut tx = self.begin_write().await?;
                let pending =
                    sqlx::query(&format!("SELECT value FROM meta WHERE key = 'erase'{}", $lock))
                        .fetch_optional(&mut *tx)
                        .await?;
                if pending.is_none() {
                    return Ok(());
                }
                let mut after = (String::new(), i64::MIN);
                loop {
                    let rows = sqlx::query(
                        "SELECT room, pos, body FROM events \
                         WHERE body LIKE '{\"type\":\"message_updated\",%' \
                         AND (room, pos) > ($1, $2) ORDER BY room, pos LIMIT $3",
                    )
                    .bind(&after.0)
                    .bind(after.1)
                    .bind($crate::store::to_db($crate::store::sql::CHUNK as u64))
                    .fetch_all(&mut *tx)
                    .await?;
                    let Some(last) = rows.last() else { break };
                    after = (last.try_get(0)?, last.try_get(1)?);
                    for row in &rows {
                        let body: &str = row.try_get(2)?;
                        let Ok(roomcast_shared::RoomEvent::MessageUpdated(edit)) =
                            serde_json::from_str(body)
                        else {
                            continue;
                        };
                        sqlx::query(
                            "UPDATE events SET message_id = $3 WHERE room = $1 AND pos = $2",
                        )
                        .bind(row.try_get::<&str, _>(0)?)
                        .bind(row.try_get::<i64, _>(1)?)
                        .bind(edit.id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                // Webhook events written before `0008_webhook_erase` name
                // their message, so that the erasure below finds them.
                let mut after = 0_i64;
                loop {
                    let rows: Vec<(i64, String)> = sqlx::query_as(
                        "SELECT seq, body FROM webhook_outbox WHERE message_id IS NULL \
                         AND kind IN ('message', 'message_updated') AND seq > $1 \
                         ORDER BY seq LIMIT $2",
                    )
                    .bind(after)
                    .bind($crate::store::to_db($crate::store::sql::CHUNK as u64))
                    .fetch_all(&mut *tx)
                    .await?;
                    let Some(last) = rows.last() else { break };
                    after = last.0;
                    for (seq, body) in &rows {
                        let Ok(event) =
                            serde_json::from_str::<roomcast_shared::webhook::WebhookEvent>(body)
                        else {
                            continue;
                        };
                        sqlx::query("UPDATE webhook_outbox SET message_id = $2 WHERE seq = $1")
                            .bind(seq)
                            .bind(event.payload.message_id())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                // In the order of the messages' key (migration 0009), so
                // that each step starts where the last ended.
                let mut after = (String::new(), String::new());
                loop {
                    let rows = sqlx::query(
                        "SELECT room, id, body FROM messages WHERE deleted \
                         AND (id, room) > ($2, $1) ORDER BY id, room LIMIT $3",
                    )
                    .bind(&after.0)
                    .bind(&after.1)
                    .bind($crate::store::to_db($crate::store::sql::CHUNK as u64))
                    .fetch_all(&mut *tx)
                    .await?;
                    let Some(last) = rows.last() else { break };
                    after = (last.try_get(0)?, last.try_get(1)?);
                    for row in &rows {
                        let body: &str = row.try_get(2)?;
                        let Ok(mut trace) =
                            serde_json::from_str::<roomcast_shared::ChatMessage>(body)
                        else {
                            continue;
                        };
                        trace.delete();
                        sqlx::query("UPDATE messages SET body = $3 WHERE room = $1 AND id = $2")
                            .bind(row.try_get::<&str, _>(0)?)
                            .bind(row.try_get::<&str, _>(1)?)
                            .bind(serde_json::to_string(&trace)?)
                            .execute(&mut *tx)
                            .await?;
                        $crate::store::sql::erase_message!(tx, &trace);
                    }
                }
                sqlx::query("DELETE FROM meta WHERE key = 'erase'").execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

/// Runs a `DELETE` of at most `$2` rows matching `$1` until fewer are
/// deleted; evaluates to the rows deleted. Each step is a transaction of
/// its own, so writers wait at most one step.
macro_rules! delete_in_steps {
    ($store:ident, $sql:expr, $bound:expr) => {{
        const STEP: u64 = 5_000;
        let mut total = 0;
        loop {
            let deleted = sqlx::query($sql)
                .bind($bound)
                .bind($crate::store::to_db(STEP))
                .execute(&$store.pool)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < STEP {
                break total;
            }
        }
    }};
}

/// Changes planned and written together: each statement stays within
/// SQLite's 32,766 parameters (8 per message row).
pub(crate) const CHUNK: usize = 500;

/// The rooms a store has committed a row of `rooms` for: rows that are
/// never deleted, so a batch whose rooms are all here skips creating them
/// (a statement less per commit, the one most commits needed). At most
/// [`StoredRooms::MAX`] names (128 bytes at most each): past that it
/// starts over, costing the statement again until it fills.
#[derive(Debug, Default)]
pub(crate) struct StoredRooms(std::sync::Mutex<std::collections::HashSet<String>>);

impl StoredRooms {
    const MAX: usize = 65_536;

    /// Those of `rooms` not known to be stored.
    pub fn unknown<'a>(&self, rooms: &[&'a str]) -> Vec<&'a str> {
        let stored = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rooms.iter().copied().filter(|room| !stored.contains(*room)).collect()
    }

    /// Notes `created` (rooms that were [`unknown`](Self::unknown)) as
    /// stored, once their transaction committed.
    pub fn committed(&self, created: Vec<String>) {
        if created.is_empty() {
            return;
        }
        let mut stored = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for room in created {
            if stored.len() >= Self::MAX {
                stored.clear();
            }
            stored.insert(room);
        }
    }

    /// Forgets every room: one was missing after all.
    pub fn forget(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// Reads what a chunk of changes needs (creating the rooms `$stored`
/// does not know, named in `$created`, and locking them all,
/// [`Rows::push_latest_of`](super::rows::Rows::push_latest_of)); evaluates to a
/// [`Known`](super::plan::Known). Two statements, a third when the chunk
/// has a room new to this store, and another when it edits or deletes,
/// whatever its size.
macro_rules! read_known {
    ($tx:ident, $db:ty, $insert:literal, $chunk:expr, $stored:expr, $created:ident) => {{
        use sqlx::Row as _;
        use $crate::store::NewEvent;
        use $crate::store::rows::{Column, Rows};
        let mut known = $crate::store::plan::Known::default();
        let valid: Vec<&NewEvent> = $chunk.iter().filter(|e| e.keys_are_valid()).collect();
        let mut rooms: Vec<&str> = valid.iter().map(|e| e.room().as_str()).collect();
        rooms.sort_unstable();
        rooms.dedup();
        let unknown = $stored.unknown(&rooms);
        if !unknown.is_empty() {
            $created.extend(unknown.iter().map(|room| room.to_string()));
            let mut query =
                sqlx::QueryBuilder::<$db>::new(concat!($insert, " rooms (room, latest) "));
            let zeros = Column::Int(vec![0; unknown.len()]);
            <$db>::push_rows(&mut query, vec![Column::Text(unknown), zeros]);
            query.push(" ON CONFLICT (room) DO NOTHING");
            query.build().execute(&mut *$tx).await?;
        }
        if !rooms.is_empty() {
            let expected = rooms.len();
            let mut query = sqlx::QueryBuilder::<$db>::new("");
            <$db>::push_latest_of(&mut query, rooms);
            let rows = query.build().fetch_all(&mut *$tx).await?;
            for (room, latest) in <$db>::latest_of(&rows)? {
                known.latest.insert(room, $crate::store::from_db(latest));
            }
            if known.latest.len() != expected {
                // A room's row went (by hand: Roomcast deletes none). Its
                // offsets are unknown: fail this batch, create it next time.
                $stored.forget();
                return Err($crate::store::StoreError::Database(sqlx::Error::RowNotFound));
            }
        }
        let keys: Vec<(&str, &str, &str)> = valid
            .iter()
            .filter_map(|e| match e {
                NewEvent::Message { room, sender, client_id, .. } => {
                    Some((room.as_str(), sender.id.as_str(), client_id.as_str()))
                }
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            // A join from the keys, not `(..) IN (VALUES ..)`, which SQLite
            // answers by scanning the whole table. `VALUES` for PostgreSQL
            // too, not arrays ([`Rows`]): the plan it cached for a join from
            // arrays of unknown length scanned `messages` (the mesh's p99
            // went from 17-25 ms to 137-254 ms). A `LATERAL` subquery per
            // key kept the arrays and the index, and measured no quicker.
            let mut query =
                sqlx::QueryBuilder::<$db>::new("WITH k (room, sender, client_id) AS (");
            query.push_values(&keys, |mut row, (room, sender, client_id)| {
                row.push_bind(*room).push_bind(*sender).push_bind(*client_id);
            });
            query.push(
                ") SELECT m.room, m.sender, m.client_id, m.id, m.pos FROM k JOIN messages AS m \
                 ON m.room = k.room AND m.sender = k.sender AND m.client_id = k.client_id",
            );
            for row in query.build().fetch_all(&mut *$tx).await? {
                let key = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let pos: i64 = row.try_get(4)?;
                known.keys.insert(key, (row.try_get(3)?, $crate::store::from_db(pos)));
            }
        }
        let changed: Vec<(&str, &str)> = valid
            .iter()
            .filter_map(|e| match e {
                NewEvent::Edit { room, id, .. } | NewEvent::Delete { room, id, .. } => {
                    Some((room.as_str(), id.as_str()))
                }
                NewEvent::Message { .. } => None,
            })
            .collect();
        if !changed.is_empty() {
            // `VALUES`, as for the keys above.
            let mut query = sqlx::QueryBuilder::<$db>::new("WITH k (room, id) AS (");
            query.push_values(&changed, |mut row, (room, id)| {
                row.push_bind(*room).push_bind(*id);
            });
            query.push(
                ") SELECT m.room, m.id, m.body, m.deleted FROM k JOIN messages AS m \
                 ON m.room = k.room AND m.id = k.id",
            );
            for row in query.build().fetch_all(&mut *$tx).await? {
                let (room, id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                match serde_json::from_str::<roomcast_shared::ChatMessage>(row.try_get(2)?) {
                    Ok(mut message) => {
                        // The column decides, as in `messages_before`.
                        if row.try_get::<bool, _>(3)? {
                            message.delete();
                        }
                        known.rows.insert((room, id), message);
                    }
                    // A row that does not decode is no message anyone may
                    // change (written by a newer version?).
                    Err(err) => tracing::warn!(%room, %id, %err, "stored message unreadable"),
                }
            }
        }
        known
    }};
}

/// Writes a [`Plan`](super::plan::Plan): rooms' offsets, new messages,
/// changed messages and the events, one statement each.
macro_rules! write_plan {
    ($tx:ident, $db:ty, $insert:literal, $plan:ident) => {{
        use $crate::store::rows::{Column, Rows};
        use $crate::store::{millis, to_db};
        if !$plan.latest.is_empty() {
            let mut query =
                sqlx::QueryBuilder::<$db>::new(concat!($insert, " rooms (room, latest) "));
            let rooms = $plan.latest.iter().map(|(room, _)| room.as_str()).collect();
            let latest = $plan.latest.iter().map(|(_, latest)| to_db(*latest)).collect();
            <$db>::push_rows(&mut query, vec![Column::Text(rooms), Column::Int(latest)]);
            query.push(" ON CONFLICT (room) DO UPDATE SET latest = excluded.latest");
            query.build().execute(&mut *$tx).await?;
        }
        for (rows, upsert) in [(&$plan.inserted, false), (&$plan.updated, true)] {
            if rows.is_empty() {
                continue;
            }
            let bodies = rows.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
            let mut query = sqlx::QueryBuilder::<$db>::new(concat!(
                $insert,
                " messages (room, id, sender, client_id, pos, at, body, deleted) "
            ));
            let columns = vec![
                Column::text(rows, |m| m.room.as_str()),
                Column::text(rows, |m| m.id.as_str()),
                Column::text(rows, |m| m.sender.id.as_str()),
                Column::text(rows, |m| m.client_id.as_str()),
                Column::Int(rows.iter().map(|m| to_db(m.offset)).collect()),
                Column::Int(rows.iter().map(|m| millis(m.created_at)).collect()),
                Column::Owned(bodies),
                Column::Bool(rows.iter().map(|m| m.deleted).collect()),
            ];
            <$db>::push_rows(&mut query, columns);
            if upsert {
                // The first edit keeps the message as sent, for the replay
                // of its `message` event; a delete forgets it.
                query.push(
                    " ON CONFLICT (room, id) DO UPDATE SET body = excluded.body, \
                     deleted = excluded.deleted, sent = CASE WHEN excluded.deleted \
                     THEN NULL ELSE COALESCE(messages.sent, messages.body) END",
                );
            }
            query.build().execute(&mut *$tx).await?;
        }
        // Any other `message` event is its message's row of `messages`.
        let logged = $plan.logged_events();
        if !logged.is_empty() {
            let bodies = logged
                .iter()
                .map(|(event, _)| serde_json::to_string(event))
                .collect::<Result<Vec<_>, _>>()?;
            let mut query = sqlx::QueryBuilder::<$db>::new(concat!(
                $insert,
                " events (room, pos, at, body, message_id) "
            ));
            let columns = vec![
                Column::Text(logged.iter().map(|(event, _)| event.room().as_str()).collect()),
                Column::Int(logged.iter().map(|(event, _)| to_db(event.offset())).collect()),
                Column::Int(logged.iter().map(|(_, at)| millis(*at)).collect()),
                Column::Owned(bodies),
                // An edit names its message, so that a delete finds it.
                Column::MaybeText(
                    logged
                        .iter()
                        .map(|(event, _)| match event {
                            roomcast_shared::RoomEvent::MessageUpdated(u) => Some(u.id.as_str()),
                            _ => None,
                        })
                        .collect(),
                ),
            ];
            <$db>::push_rows(&mut query, columns);
            query.build().execute(&mut *$tx).await?;
        }
        // Messages deleted by this batch leave the log too. Deletes are
        // rare beside sends, so a few statements each; sends pay nothing.
        for m in $plan.inserted.iter().chain(&$plan.updated).filter(|m| m.deleted) {
            $crate::store::sql::erase_message!($tx, m);
        }
    }};
}

/// Erases the deleted message `$m` (its trace) from the room's `events`:
/// its `message` event becomes the trace and each edit a `message_deleted`
/// at the edit's offset ([`RoomEvent::erase`](roomcast_shared::RoomEvent::erase)),
/// found through `events.message_id`.
macro_rules! erase_message {
    ($tx:ident, $m:expr) => {{
        let m: &roomcast_shared::ChatMessage = $m;
        let trace = serde_json::to_string(&roomcast_shared::RoomEvent::Message(m.clone()))?;
        sqlx::query("UPDATE events SET body = $3 WHERE room = $1 AND pos = $2")
            .bind(m.room.as_str())
            .bind($crate::store::to_db(m.offset))
            .bind(trace)
            .execute(&mut *$tx)
            .await?;
        let edits: Vec<i64> =
            sqlx::query_scalar("SELECT pos FROM events WHERE room = $1 AND message_id = $2")
                .bind(m.room.as_str())
                .bind(m.id.as_str())
                .fetch_all(&mut *$tx)
                .await?;
        for pos in edits {
            let erased =
                roomcast_shared::RoomEvent::MessageDeleted(roomcast_shared::MessageDeleted {
                    room: m.room.clone(),
                    id: m.id.clone(),
                    offset: $crate::store::from_db(pos),
                });
            sqlx::query(
                "UPDATE events SET body = $3, message_id = NULL WHERE room = $1 AND pos = $2",
            )
            .bind(m.room.as_str())
            .bind(pos)
            .bind(serde_json::to_string(&erased)?)
            .execute(&mut *$tx)
            .await?;
        }
        // The webhook events still waiting or dead-lettered that carry its
        // text: a few rows per endpoint, found by their index.
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, body FROM webhook_outbox WHERE room = $1 AND message_id = $2",
        )
        .bind(m.room.as_str())
        .bind(m.id.as_str())
        .fetch_all(&mut *$tx)
        .await?;
        for (seq, body) in rows {
            // A body this server did not write stays, unnamed.
            let erased = serde_json::from_str::<roomcast_shared::webhook::WebhookEvent>(&body)
                .ok()
                .and_then(|mut event| event.payload.erase(&m.id).then_some(event))
                .map(|event| serde_json::to_string(&event))
                .transpose()?;
            sqlx::query(
                "UPDATE webhook_outbox SET body = COALESCE($2, body), message_id = NULL \
                 WHERE seq = $1",
            )
            .bind(seq)
            .bind(erased)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

pub(crate) use {delete_in_steps, erase_message, read_known, sql_store, write_plan};
