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
                let mut conn = self.pool.acquire().await?;
                $crate::store::sql::ensure_room!(conn, room);
                let row = sqlx::query("SELECT epoch, latest FROM rooms WHERE room = $1")
                    .bind(room.as_str())
                    .fetch_one(&mut *conn)
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

            async fn set_read(
                &self,
                user: &str,
                room: &roomcast_shared::RoomName,
                offset: u64,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::check_user(user)?;
                sqlx::query(
                    "INSERT INTO read_positions (user_id, room, pos) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, room) DO UPDATE SET pos = excluded.pos \
                     WHERE excluded.pos > read_positions.pos",
                )
                .bind(user)
                .bind(room.as_str())
                .bind($crate::store::to_db(offset))
                .execute(&self.pool)
                .await?;
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

            async fn keep_notification(
                &self,
                user: &str,
                notification: &roomcast_shared::Notification,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::check_user(user)?;
                sqlx::query("INSERT INTO notifications (user_id, body) VALUES ($1, $2)")
                    .bind(user)
                    .bind(serde_json::to_string(notification)?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn take_notifications(
                &self,
                user: &str,
            ) -> Result<Vec<roomcast_shared::Notification>, $crate::store::StoreError> {
                $crate::store::check_user(user)?;
                use sqlx::Row as _;
                // One statement: a notification kept meanwhile is either taken
                // now or left for the next take, never lost.
                let rows =
                    sqlx::query("DELETE FROM notifications WHERE user_id = $1 RETURNING seq, body")
                        .bind(user)
                        .fetch_all(&self.pool)
                        .await?;
                let mut kept = rows
                    .iter()
                    .map(|row| Ok((row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                kept.sort_by_key(|(seq, _)| *seq);
                kept.iter().map(|(_, body)| Ok(serde_json::from_str(body)?)).collect()
            }
        }
    };
}

/// Creates the room's row, with a new epoch, unless it exists.
macro_rules! ensure_room {
    ($conn:ident, $room:expr) => {
        sqlx::query(
            "INSERT INTO rooms (room, epoch, latest) VALUES ($1, $2, 0) \
             ON CONFLICT (room) DO NOTHING",
        )
        .bind($room.as_str())
        .bind(uuid::Uuid::now_v7().simple().to_string())
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
            NewEvent::Message { room, id, client_id, sender, content, created_at } => {
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
                    };
                    let body = serde_json::to_string(&message)?;
                    sqlx::query(
                        "INSERT INTO messages (room, id, sender, client_id, pos, body) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(room.as_str())
                    .bind(id.as_str())
                    .bind(sender.id.as_str())
                    .bind(client_id.as_str())
                    .bind(pos)
                    .bind(&body)
                    .execute(&mut *$tx)
                    .await?;
                    let event = RoomEvent::Message(message);
                    $crate::store::sql::insert_event!($tx, room, pos, &event);
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
                        let (event, deleted) = match $event {
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
                                (event, false)
                            }
                            _ => {
                                let event = RoomEvent::MessageDeleted(MessageDeleted {
                                    room: room.clone(),
                                    id: id.clone(),
                                    offset: from_db(pos),
                                });
                                (event, true)
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
                        $crate::store::sql::insert_event!($tx, room, pos, &event);
                        Outcome::Appended(event)
                    }
                }
            }
        }
    }};
}

/// Adds an event to the room's stream at `pos`.
macro_rules! insert_event {
    ($tx:ident, $room:expr, $pos:expr, $event:expr) => {
        sqlx::query("INSERT INTO events (room, pos, body) VALUES ($1, $2, $3)")
            .bind($room.as_str())
            .bind($pos)
            .bind(serde_json::to_string($event)?)
            .execute(&mut *$tx)
            .await?
    };
}

pub(crate) use {append_one, ensure_room, insert_event, lock_room, next_offset, sql_store};
