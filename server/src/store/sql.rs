//! The SQL both stores run: one text for SQLite and PostgreSQL (`$n`
//! parameters, `ON CONFLICT`, `RETURNING`), expanded for each backend's
//! pool type by [`sql_store!`]. Every value from a user is a bound
//! parameter.

/// Implements [`Store`](super::Store) for `$store`, whose field `pool` is a
/// `sqlx::Pool<$db>` and whose `begin_write` starts a writing transaction.
macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn append(
                &self,
                batch: &[$crate::store::NewEvent],
            ) -> Result<Vec<$crate::store::Outcome>, $crate::store::StoreError> {
                // Rooms are locked in name order (a stable sort keeps each
                // room's changes in batch order), so two batches over the
                // same rooms cannot deadlock.
                let mut order: Vec<usize> = (0..batch.len()).collect();
                order.sort_by(|&x, &y| batch[x].room().cmp(batch[y].room()));
                let mut tx = self.begin_write().await?;
                let mut outcomes = vec![None; batch.len()];
                for i in order {
                    let event = &batch[i];
                    outcomes[i] = Some($crate::store::sql::append_one!(tx, event));
                }
                tx.commit().await?;
                Ok(outcomes.into_iter().flatten().collect())
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
                let rows = sqlx::query(
                    "SELECT body FROM events WHERE room = $1 AND pos > $2 ORDER BY pos LIMIT $3",
                )
                .bind(room.as_str())
                .bind($crate::store::to_db(offset))
                .bind($crate::store::to_db(limit as u64))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| Ok(serde_json::from_str(row.try_get::<&str, _>(0)?)?))
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
                    "SELECT body FROM messages WHERE room = $1 AND pos < $2 AND NOT deleted \
                     ORDER BY pos DESC LIMIT $3",
                )
                .bind(room.as_str())
                .bind(before.map_or(i64::MAX, $crate::store::to_db))
                .bind($crate::store::to_db(limit as u64))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .rev()
                    .map(|row| Ok(serde_json::from_str(row.try_get::<&str, _>(0)?)?))
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

/// Creates the room's row unless it exists.
macro_rules! ensure_room {
    ($conn:ident, $room:expr) => {
        sqlx::query("INSERT INTO rooms (room, latest) VALUES ($1, 0) ON CONFLICT (room) DO NOTHING")
            .bind($room.as_str())
            .execute(&mut *$conn)
            .await?
    };
}

/// Locks the room's row until commit (creating it when missing), so that
/// writers of one room take turns: a duplicate check then sees every send
/// committed before it (PostgreSQL; SQLite's `BEGIN IMMEDIATE` already
/// serializes writers).
macro_rules! lock_room {
    ($tx:ident, $room:expr) => {{
        $crate::store::sql::ensure_room!($tx, $room);
        sqlx::query("UPDATE rooms SET latest = latest WHERE room = $1")
            .bind($room.as_str())
            .execute(&mut *$tx)
            .await?;
    }};
}

/// The locked room's next offset, taken.
macro_rules! next_offset {
    ($tx:ident, $room:expr) => {{
        let latest: i64 = sqlx::query_scalar(
            "UPDATE rooms SET latest = latest + 1 WHERE room = $1 RETURNING latest",
        )
        .bind($room.as_str())
        .fetch_one(&mut *$tx)
        .await?;
        latest
    }};
}

/// Stores one change inside the transaction `$tx`; evaluates to its
/// [`Outcome`](super::Outcome).
macro_rules! append_one {
    ($tx:ident, $event:expr) => {{
        use sqlx::Row as _;
        use $crate::store::{NewEvent, Outcome, from_db};
        use roomcast_shared::{ChatMessage, MessageDeleted, MessageUpdated, RoomEvent};
        match $event {
            event if !event.keys_are_valid() => Outcome::Invalid,
            NewEvent::Message { room, id, client_id, sender, content, created_at, data } => {
                $crate::store::sql::lock_room!($tx, room);
                let original = sqlx::query(
                    "SELECT id, pos FROM messages WHERE room = $1 AND sender = $2 AND client_id = $3",
                )
                .bind(room.as_str())
                .bind(sender.id.as_str())
                .bind(client_id.as_str())
                .fetch_optional(&mut *$tx)
                .await?;
                if let Some(row) = original {
                    Outcome::Duplicate { id: row.try_get(0)?, offset: from_db(row.try_get(1)?) }
                } else {
                    let pos = $crate::store::sql::next_offset!($tx, room);
                    let message = ChatMessage {
                        room: room.clone(),
                        id: id.clone(),
                        offset: from_db(pos),
                        client_id: client_id.clone(),
                        sender: sender.clone(),
                        content: content.clone(),
                        created_at: *created_at,
                        edited_at: None,
                        data: data.clone(),
                    };
                    let body = serde_json::to_string(&message)?;
                    sqlx::query(
                        "INSERT INTO messages (room, id, sender, client_id, pos, at, body) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(room.as_str())
                    .bind(id.as_str())
                    .bind(sender.id.as_str())
                    .bind(client_id.as_str())
                    .bind(pos)
                    .bind($crate::store::millis(*created_at))
                    .bind(&body)
                    .execute(&mut *$tx)
                    .await?;
                    let event = RoomEvent::Message(message);
                    $crate::store::sql::insert_event!($tx, room, pos, *created_at, &event);
                    Outcome::Appended(event)
                }
            }
            NewEvent::Edit { room, id, by, .. } | NewEvent::Delete { room, id, by } => {
                $crate::store::sql::lock_room!($tx, room);
                let current = sqlx::query(
                    "SELECT sender, body FROM messages WHERE room = $1 AND id = $2 AND NOT deleted",
                )
                .bind(room.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *$tx)
                .await?;
                match current {
                    None => Outcome::NotFound,
                    // A sender that does not decode is nobody's: refused.
                    Some(row)
                        if by.as_deref().is_some_and(|by| {
                            row.try_get::<&str, _>(0).map_or(true, |sender| sender != by)
                        }) =>
                    {
                        Outcome::NotTheSender
                    }
                    Some(row) => {
                        let mut message: ChatMessage =
                            serde_json::from_str(row.try_get::<&str, _>(1)?)?;
                        let pos = $crate::store::sql::next_offset!($tx, room);
                        let (event, deleted, at) = match $event {
                            NewEvent::Edit { content, edited_at, .. } => {
                                message.content = content.clone();
                                message.edited_at = Some(*edited_at);
                                let event = RoomEvent::MessageUpdated(MessageUpdated {
                                    room: room.clone(),
                                    id: id.clone(),
                                    offset: from_db(pos),
                                    content: content.clone(),
                                    edited_at: *edited_at,
                                });
                                (event, false, *edited_at)
                            }
                            _ => {
                                let event = RoomEvent::MessageDeleted(MessageDeleted {
                                    room: room.clone(),
                                    id: id.clone(),
                                    offset: from_db(pos),
                                });
                                (event, true, time::OffsetDateTime::now_utc())
                            }
                        };
                        sqlx::query(
                            "UPDATE messages SET body = $3, deleted = $4 WHERE room = $1 AND id = $2",
                        )
                        .bind(room.as_str())
                        .bind(id.as_str())
                        .bind(serde_json::to_string(&message)?)
                        .bind(deleted)
                        .execute(&mut *$tx)
                        .await?;
                        $crate::store::sql::insert_event!($tx, room, pos, at, &event);
                        Outcome::Appended(event)
                    }
                }
            }
        }
    }};
}

/// Adds an event to the room's stream at `pos`, made at `at`.
macro_rules! insert_event {
    ($tx:ident, $room:expr, $pos:expr, $at:expr, $event:expr) => {
        sqlx::query("INSERT INTO events (room, pos, at, body) VALUES ($1, $2, $3, $4)")
            .bind($room.as_str())
            .bind($pos)
            .bind($crate::store::millis($at))
            .bind(serde_json::to_string($event)?)
            .execute(&mut *$tx)
            .await?
    };
}

pub(crate) use {
    append_one, delete_in_steps, ensure_room, insert_event, lock_room, next_offset, sql_store,
};
