//! Outgoing typing indicators: `typing(true)` on every keystroke becomes at
//! most one frame per throttle interval, and a pause ends typing by itself.

/// One room's outgoing typing state.
#[derive(Debug, Clone, Default)]
pub struct TypingThrottle {
    /// Whether the server was last told `true`.
    active: bool,
    /// When the last `true` frame went out, to throttle repeats (which also
    /// keep the indicator alive on the server, whose timeout is 5 s).
    last_sent: Option<u64>,
    /// When to send `false` if no further `typing(true)` comes.
    idle_at: Option<u64>,
}

impl TypingThrottle {
    /// The user typed (`true`) or stopped (`false`) at `now`; returns the
    /// frame to send, if any.
    pub fn set(&mut self, typing: bool, now: u64, throttle_ms: u64, idle_ms: u64) -> Option<bool> {
        if typing {
            self.idle_at = Some(now + idle_ms);
            let due = self.last_sent.is_none_or(|t| now.saturating_sub(t) >= throttle_ms);
            if !self.active || due {
                self.active = true;
                self.last_sent = Some(now);
                return Some(true);
            }
            None
        } else {
            self.idle_at = None;
            std::mem::take(&mut self.active).then_some(false)
        }
    }

    /// Sends `false` once the user paused for the idle time.
    pub fn tick(&mut self, now: u64) -> Option<bool> {
        match self.idle_at {
            Some(at) if now >= at => self.set(false, now, 0, 0),
            _ => None,
        }
    }

    /// When [`tick`](Self::tick) has something to do.
    pub fn deadline(&self) -> Option<u64> {
        self.idle_at
    }

    /// The server ended typing itself (the user sent a message, or the
    /// connection dropped): forget the state without sending anything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystrokes_are_throttled_and_a_pause_ends_typing() {
        let mut t = TypingThrottle::default();
        assert_eq!(t.set(true, 0, 500, 3_000), Some(true));
        assert_eq!(t.set(true, 100, 500, 3_000), None);
        assert_eq!(t.set(true, 499, 500, 3_000), None);
        assert_eq!(t.set(true, 500, 500, 3_000), Some(true), "a repeat keeps it alive");
        assert_eq!(t.tick(3_000), None, "the last keystroke was at 500");
        assert_eq!(t.deadline(), Some(3_500));
        assert_eq!(t.tick(3_500), Some(false));
        assert_eq!(t.tick(9_000), None, "false is sent once");
        assert_eq!(t.set(true, 9_100, 500, 3_000), Some(true), "a new burst starts at once");
    }

    #[test]
    fn explicit_false_is_sent_only_after_true() {
        let mut t = TypingThrottle::default();
        assert_eq!(t.set(false, 0, 500, 3_000), None);
        assert_eq!(t.set(true, 10, 500, 3_000), Some(true));
        assert_eq!(t.set(false, 20, 500, 3_000), Some(false));
        assert_eq!(t.set(false, 30, 500, 3_000), None);
        assert_eq!(t.set(true, 40, 500, 3_000), Some(true), "not throttled after a stop");
    }

    #[test]
    fn clear_forgets_without_a_frame() {
        let mut t = TypingThrottle::default();
        t.set(true, 0, 500, 3_000);
        t.clear();
        assert_eq!(t.tick(10_000), None);
        assert_eq!(t.deadline(), None);
    }
}
