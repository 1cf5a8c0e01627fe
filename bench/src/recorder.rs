//! What receiving connections record: deliveries and end-to-end latency,
//! read from a timestamp the sender put at the start of each message's
//! content.
//!
//! The generator runs on one thread, so every connection shares one
//! [`Recorder`] behind an `Rc<RefCell<_>>`: no atomics, no channel, and no
//! extra task wake-up per delivered frame. A frame is not parsed as JSON:
//! the recorder checks its `type` prefix and finds the content's timestamp
//! with one substring search, unless the generator reads like a browser
//! (`--parse`): then every frame is parsed as JSON too, as an application
//! would before it can act on any of them.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Instant;

use hdrhistogram::Histogram;
use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};

/// The generator's clock: nanoseconds since the process started. Sender and
/// receivers live in the same process, so they share it.
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// How a message broadcast starts: the server writes the `type` tag first.
const MESSAGE_PREFIX: &[u8] = br#"{"type":"message""#;
/// What precedes the timestamp inside a message frame.
static MARKER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""content":"rcb:"#));

/// Nanoseconds on the generator's clock.
pub fn now_ns() -> u64 {
    START.elapsed().as_nanos() as u64
}

/// Message content of `size` bytes carrying its send time.
pub fn content(sent_ns: u64, size: usize) -> String {
    let mut text = format!("rcb:{sent_ns};");
    let pad = size.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', pad));
    text
}

/// The send time carried by a `message` frame from this generator.
pub fn sent_ns(frame: &[u8]) -> Option<u64> {
    if !frame.starts_with(MESSAGE_PREFIX) {
        return None;
    }
    let start = MARKER.find(frame)? + MARKER.needle().len();
    let mut value: u64 = 0;
    for &byte in &frame[start..] {
        match byte {
            b'0'..=b'9' => value = value * 10 + u64::from(byte - b'0'),
            b';' => return Some(value),
            _ => return None,
        }
    }
    None
}

/// Deliveries and latencies seen by every receiving connection.
#[derive(Debug)]
pub struct Recorder {
    /// Off during set-up and warm-up; frames are then only drained.
    pub recording: bool,
    /// Latency in microseconds.
    histogram: Histogram<u64>,
    /// Timestamped messages received while recording.
    pub deliveries: u64,
    /// Connections the server closed, by close code (0: dropped without one).
    pub closed: BTreeMap<u16, u64>,
    /// Parse every frame as JSON (`--parse`).
    pub parse: bool,
    /// Text frames received, recording or not.
    pub frames: u64,
    /// Frames that did not parse as JSON objects with a `type` (`--parse`).
    pub unparsed: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            recording: false,
            // 1 µs to 100 s at three significant digits: about 200 KiB.
            histogram: Histogram::new_with_bounds(1, 100_000_000, 3)
                .expect("static histogram bounds are valid"),
            deliveries: 0,
            closed: BTreeMap::new(),
            parse: false,
            frames: 0,
            unparsed: 0,
        }
    }
}

impl Recorder {
    /// Records a received text frame.
    pub fn frame(&mut self, frame: &[u8]) {
        self.frames += 1;
        if self.parse {
            let parsed = serde_json::from_slice::<serde_json::Value>(frame);
            if !parsed.is_ok_and(|v| v.get("type").is_some_and(serde_json::Value::is_string)) {
                self.unparsed += 1;
            }
        }
        if !self.recording {
            return;
        }
        if let Some(sent) = sent_ns(frame) {
            let micros = now_ns().saturating_sub(sent) / 1000;
            self.histogram.saturating_record(micros.max(1));
            self.deliveries += 1;
        }
    }

    /// Starts a measurement window from zero.
    pub fn start_window(&mut self) {
        self.histogram.reset();
        self.deliveries = 0;
        self.recording = true;
    }

    /// Ends a window, summarising what it saw.
    pub fn end_window(&mut self) -> Latency {
        self.recording = false;
        Latency::of(&self.histogram)
    }

    /// Total connections closed so far.
    pub fn closed_count(&self) -> u64 {
        self.closed.values().sum()
    }
}

/// Latency percentiles of a window, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trips_through_a_message_frame() {
        let content = content(123_456_789, 100);
        assert_eq!(content.len(), 100);
        let frame = format!(
            r#"{{"type":"message","room":"r","id":"m1","offset":1,"client_id":"c","sender":{{"id":"a","name":"A"}},"content":"{content}","created_at":"2026-01-01T00:00:00Z"}}"#
        );
        assert_eq!(sent_ns(frame.as_bytes()), Some(123_456_789));
    }

    #[test]
    fn other_frames_are_ignored() {
        assert_eq!(sent_ns(br#"{"type":"ack","content":"rcb:1;"}"#), None);
        assert_eq!(sent_ns(br#"{"type":"message","content":"hello"}"#), None);
    }

    #[test]
    fn a_window_counts_only_while_recording() {
        let mut recorder = Recorder::default();
        let frame = format!(r#"{{"type":"message","content":"{}"}}"#, content(now_ns(), 20));
        recorder.frame(frame.as_bytes());
        assert_eq!(recorder.deliveries, 0);
        recorder.start_window();
        recorder.frame(frame.as_bytes());
        let latency = recorder.end_window();
        assert_eq!((recorder.deliveries, latency.count), (1, 1));
    }
}
