//! Bans and mutes (`sanctions`): who may not join a room, or not speak in
//! it, kept so that they hold across restarts and on every instance. One
//! SQL text for both stores, expanded by [`sanction_log!`] as `ingest.rs`
//! does.

use async_trait::async_trait;
use roomcast_shared::RoomName;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;

/// What a sanction forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SanctionKind {
    /// Joining the room.
    Ban,
    /// Sending, editing and typing in the room (reading is allowed).
    Mute,
}

impl SanctionKind {
    /// The stored (and wire) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ban => "ban",
            Self::Mute => "mute",
        }
    }

    /// Reads a stored `kind`.
    pub(crate) fn parse_stored(text: &str) -> Option<Self> {
        match text {
            "ban" => Some(Self::Ban),
            "mute" => Some(Self::Mute),
            _ => None,
        }
    }
}

/// One user's ban or mute in one room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sanction {
    pub room: RoomName,
    pub user_id: String,
    pub kind: SanctionKind,
}

/// The sanctions in force.
#[async_trait]
pub trait SanctionLog: Send + Sync {
    /// Records `sanction` (set at `at`); returns whether it was new
    /// (recording it again changes nothing).
    async fn put_sanction(
        &self,
        sanction: &Sanction,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Lifts `sanction`; returns whether it was in force.
    async fn lift_sanction(&self, sanction: &Sanction) -> Result<bool, StoreError>;

    /// Every sanction in force (loaded once when an instance starts).
    async fn sanctions(&self) -> Result<Vec<Sanction>, StoreError>;
}

/// Implements [`SanctionLog`] for `$store`, whose field `pool` is a
/// `sqlx::Pool`.
macro_rules! sanction_log {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::sanctions::SanctionLog for $store {
            async fn put_sanction(
                &self,
                sanction: &$crate::store::sanctions::Sanction,
                at: time::OffsetDateTime,
            ) -> Result<bool, $crate::store::StoreError> {
                $crate::store::check_user(&sanction.user_id)?;
                let done = sqlx::query(
                    "INSERT INTO sanctions (room, user_id, kind, at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(sanction.room.as_str())
                .bind(&sanction.user_id)
                .bind(sanction.kind.as_str())
                .bind($crate::store::millis(at))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn lift_sanction(
                &self,
                sanction: &$crate::store::sanctions::Sanction,
            ) -> Result<bool, $crate::store::StoreError> {
                $crate::store::check_user(&sanction.user_id)?;
                let done = sqlx::query(
                    "DELETE FROM sanctions WHERE room = $1 AND user_id = $2 AND kind = $3",
                )
                .bind(sanction.room.as_str())
                .bind(&sanction.user_id)
                .bind(sanction.kind.as_str())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn sanctions(
                &self,
            ) -> Result<Vec<$crate::store::sanctions::Sanction>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query("SELECT room, user_id, kind FROM sanctions")
                    .fetch_all(&self.pool)
                    .await?;
                let mut all = Vec::with_capacity(rows.len());
                for row in rows {
                    let room: String = row.try_get("room")?;
                    let kind: String = row.try_get("kind")?;
                    // A row another version wrote that this one cannot read
                    // is skipped rather than failing the start.
                    if let (Ok(room), Some(kind)) = (
                        roomcast_shared::RoomName::new(room),
                        $crate::store::sanctions::SanctionKind::parse_stored(&kind),
                    ) {
                        all.push($crate::store::sanctions::Sanction {
                            room,
                            user_id: row.try_get("user_id")?,
                            kind,
                        });
                    }
                }
                Ok(all)
            }
        }
    };
}

sanction_log!(super::SqliteStore);
sanction_log!(super::PostgresStore);
