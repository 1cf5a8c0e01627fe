//! Bans and mutes in the store: set once, lifted once, read back after the
//! store is opened again, and hostile ids kept as data.

use roomcast_server::store::StoreError;
use roomcast_server::store::sanctions::{Sanction, SanctionKind};

use crate::{Backend, both_stores, now, room};

fn sanction(room_name: &str, user_id: &str, kind: SanctionKind) -> Sanction {
    Sanction { room: room(room_name), user_id: user_id.into(), kind }
}

both_stores!(sanctions_are_kept_lifted_and_read_back);
async fn sanctions_are_kept_lifted_and_read_back(backend: &Backend) {
    let store = backend.open().await;
    let ban = sanction("general", "bob", SanctionKind::Ban);
    let mute = sanction("general", "bob", SanctionKind::Mute);
    let hostile = sanction("general", "x'); DROP TABLE sanctions; --", SanctionKind::Ban);
    assert!(store.put_sanction(&ban, now()).await.unwrap());
    assert!(!store.put_sanction(&ban, now()).await.unwrap(), "a second ban changes nothing");
    assert!(store.put_sanction(&mute, now()).await.unwrap());
    assert!(store.put_sanction(&hostile, now()).await.unwrap());
    let nul = sanction("general", "a\0b", SanctionKind::Ban);
    assert!(matches!(store.put_sanction(&nul, now()).await, Err(StoreError::Invalid)));
    drop(store);

    let store = backend.open().await;
    let mut kept = store.sanctions().await.unwrap();
    kept.sort_by(|a, b| (&a.user_id, a.kind.as_str()).cmp(&(&b.user_id, b.kind.as_str())));
    assert_eq!(kept, [ban.clone(), mute.clone(), hostile.clone()]);
    assert!(store.lift_sanction(&ban).await.unwrap());
    assert!(!store.lift_sanction(&ban).await.unwrap(), "lifting twice changes nothing");
    assert_eq!(store.sanctions().await.unwrap().len(), 2);
}
