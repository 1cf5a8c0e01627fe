//! Read receipts of one room: each user's latest known read position, from
//! `joined.reads` (the positions the server kept) and live `read` frames.
//!
//! Invariant: a position never moves back. A receipt replaces the one held
//! for its user only when it is further into the room: by the messages'
//! offsets when both messages are loaded, else by `read_at`. So a rejoin
//! whose `reads` is older than a live `read` seen before (another node, a
//! server that forgot) changes nothing. A receipt naming a message that is
//! not loaded is kept as is: it counts once that message arrives (history,
//! a later join).

use litemap::LiteMap;
use roomcast_shared::ReadReceipt;
use roomcast_shared::frame::MAX_JOINED_READS;

/// The read positions of a room's users, by user id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipts {
    by_user: LiteMap<String, ReadReceipt>,
}

impl Receipts {
    /// Takes `receipt` if it moves its user forward; `offset_of` gives the
    /// offset of a loaded message. Returns whether anything changed.
    pub fn merge(&mut self, receipt: ReadReceipt, offset_of: impl Fn(&str) -> Option<u64>) -> bool {
        if let Some(known) = self.by_user.get(&receipt.user_id) {
            let forward = receipt.id != known.id
                && match (offset_of(&receipt.id), offset_of(&known.id)) {
                    (Some(new), Some(old)) => new > old,
                    _ => receipt.read_at > known.read_at,
                };
            if !forward {
                return false;
            }
        }
        self.by_user.insert(receipt.user_id.clone(), receipt);
        true
    }

    /// Merges a `joined.reads` list; at most [`MAX_JOINED_READS`] are taken,
    /// whatever the server sent. Returns whether anything changed.
    pub fn merge_joined(
        &mut self,
        reads: Vec<ReadReceipt>,
        offset_of: impl Fn(&str) -> Option<u64>,
    ) -> bool {
        let mut changed = false;
        for receipt in reads.into_iter().take(MAX_JOINED_READS) {
            changed |= self.merge(receipt, &offset_of);
        }
        changed
    }

    /// `user_id`'s position, if known.
    pub fn get(&self, user_id: &str) -> Option<&ReadReceipt> {
        self.by_user.get(user_id)
    }

    /// Every position, by user id.
    pub fn iter(&self) -> impl Iterator<Item = &ReadReceipt> {
        self.by_user.values()
    }

    /// Every position, latest readers first (as `joined.reads` lists them).
    pub fn latest_first(&self) -> Vec<&ReadReceipt> {
        let mut all: Vec<&ReadReceipt> = self.by_user.values().collect();
        crate::sort::sort_by(&mut all, |a, b| {
            b.read_at.cmp(&a.read_at).then_with(|| a.user_id.cmp(&b.user_id))
        });
        all
    }

    /// How many users have a position.
    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    /// Whether no user has a position.
    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }
}

#[cfg(test)]
mod tests;
