//! Criterion benchmarks of the frame codecs on the hot path: decoding a
//! client's `send` (every frame a client sends is parsed once) and encoding
//! the `message` broadcast (encoded once per message, whatever the room size).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roomcast_server::bench_support::encode;
use roomcast_shared::{ChatMessage, ClientFrame, Envelope, RoomName, ServerFrame, UserInfo};
use time::OffsetDateTime;

/// 100 bytes of content, the size the load tests use.
const CONTENT: &str = "rcb:1234567890;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn decode_send(c: &mut Criterion) {
    let text = format!(
        r#"{{"type":"send","room":"general","content":"{CONTENT}","client_id":"c-1234","ref":17}}"#
    );
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("send", |b| {
        b.iter(|| {
            let envelope: Envelope<ClientFrame> =
                serde_json::from_str(black_box(&text)).expect("a valid frame");
            envelope
        })
    });
    group.finish();
}

fn encode_message(c: &mut Criterion) {
    let frame = ServerFrame::Message(ChatMessage {
        room: RoomName::new("general").expect("a valid room"),
        id: "0192f3a4-5b6c-7d8e-9f01-23456789abcd".into(),
        offset: 123_456,
        client_id: "c-1234".into(),
        sender: UserInfo {
            id: "alice".into(),
            name: "Alice".into(),
            role: Some("member".into()),
            avatar: None,
        },
        content: CONTENT.into(),
        created_at: OffsetDateTime::now_utc(),
        edited_at: None,
        data: None,
        deleted: false,
    });
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(encode(&frame).len() as u64));
    group.bench_function("message", |b| b.iter(|| encode(black_box(&frame))));
    group.finish();
}

criterion_group!(benches, decode_send, encode_message);
criterion_main!(benches);
