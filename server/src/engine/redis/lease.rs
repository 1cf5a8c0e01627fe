//! Instance leases: each instance renews a short-lived key; when one stops
//! renewing (it crashed or was killed), the others undo its connections and
//! memberships and announce its users as offline, so no ghost stays online.

use std::sync::Arc;

use redis::AsyncCommands;
use roomcast_shared::{RoomName, UserInfo};
use tokio_util::sync::CancellationToken;

use super::fanout::publish_change;
use super::presence::went_offline;
use super::{Store, keys, now_rfc3339, scripts::REAP_SCRIPT};
use crate::engine::{Departure, MemberChange};

/// Renews this instance's lease and reaps dead instances until shutdown.
pub(super) async fn keep(engine: Arc<Store>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(engine.settings.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if renew(&engine).await.is_ok() {
            reap_dead(&engine).await;
        }
    }
}

async fn renew(engine: &Store) -> Result<(), crate::engine::EngineError> {
    let lease_ms = engine.settings.lease.as_millis() as u64;
    let mut pipe = redis::pipe();
    pipe.set_options(
        keys::instance_alive(&engine.instance),
        1,
        redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(lease_ms)),
    )
    .sadd(keys::INSTANCES, &engine.instance);
    engine.exec(pipe.query_async::<()>(&mut engine.conn())).await
}

async fn reap_dead(engine: &Store) {
    let Ok(instances) =
        engine.exec(engine.conn().smembers::<_, Vec<String>>(keys::INSTANCES)).await
    else {
        return;
    };
    for instance in instances.iter().filter(|i| **i != engine.instance) {
        let alive =
            engine.exec(engine.conn().exists::<_, bool>(keys::instance_alive(instance))).await;
        if let Ok(false) = alive
            && let Err(err) = reap(engine, instance).await
        {
            tracing::warn!(instance, %err, "reaping a dead instance failed");
        }
    }
}

/// Undoes what `instance` left behind and tells the rooms concerned.
async fn reap(engine: &Store, instance: &str) -> Result<(), crate::engine::EngineError> {
    let mut invocation = REAP_SCRIPT.prepare_invoke();
    invocation
        .key(keys::instance_alive(instance))
        .key(keys::instance_members(instance))
        .key(keys::instance_users(instance))
        .key(keys::INSTANCES)
        .key(keys::ONLINE)
        .arg(instance)
        .arg(now_rfc3339())
        .arg(engine.settings.user_idle.as_secs().max(1));
    type Offline = (String, Vec<String>, Vec<String>);
    type Left = (String, String, Option<String>, i64);
    let (offline, left): (Vec<Offline>, Vec<Left>) =
        engine.exec(invocation.invoke_async(&mut engine.conn())).await?;
    if !offline.is_empty() || !left.is_empty() {
        tracing::info!(
            instance,
            offline = offline.len(),
            left = left.len(),
            "reaped a dead instance"
        );
    }
    // Told first: the script has undone it all, and a failed publish
    // below must not lose the rest.
    if let Some(listener) = engine.departures.get() {
        for (user_id, state, _) in &offline {
            if let Some(presence) = went_offline(user_id, state.clone()) {
                listener(Departure::Offline(presence));
            }
        }
        for (room, user_id, _, vacated) in &left {
            let Ok(room) = RoomName::new(room.clone()) else { continue };
            listener(Departure::Left { room, user_id: user_id.clone(), vacated: *vacated == 1 });
        }
    }
    for (user_id, _state, rooms) in offline {
        let rooms: Vec<RoomName> =
            rooms.into_iter().filter_map(|r| RoomName::new(r).ok()).collect();
        publish_change(engine, &rooms, &MemberChange::Status { user_id }).await?;
    }
    for (room, _, profile, _) in left {
        let (Ok(room), Some(Ok(user))) =
            (RoomName::new(room), profile.map(|p| serde_json::from_str::<UserInfo>(&p)))
        else {
            continue;
        };
        publish_change(engine, &[room], &MemberChange::Left { user }).await?;
    }
    Ok(())
}

/// At shutdown: drop the lease and undo this instance's state at once, so
/// others see its users leave now rather than when the lease runs out.
pub(super) async fn release(engine: &Store) {
    let dropped: Result<(), redis::RedisError> =
        engine.conn().del(keys::instance_alive(&engine.instance)).await;
    if engine.track(dropped).is_ok() {
        let _ = reap(engine, &engine.instance).await;
    }
}
