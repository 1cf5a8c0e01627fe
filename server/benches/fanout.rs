//! Criterion benchmark of the last hop of every fan-out: one encoded message
//! queued to each of 10,000 local subscribers of a room through the hub, and
//! the queues drained as the writers would. Throughput is per delivery.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roomcast_server::bench_support::{FanoutRoom, encode};
use roomcast_shared::{ChatMessage, RoomName, ServerFrame, UserInfo};
use time::OffsetDateTime;

const SUBSCRIBERS: usize = 10_000;

fn fanout(c: &mut Criterion) {
    let frame = encode(&ServerFrame::Message(ChatMessage {
        room: RoomName::new("bench").expect("a valid room"),
        id: "0192f3a4-5b6c-7d8e-9f01-23456789abcd".into(),
        offset: 1,
        client_id: "c-1".into(),
        sender: UserInfo { id: "alice".into(), name: "Alice".into(), role: None, avatar: None },
        content: "x".repeat(100),
        created_at: OffsetDateTime::now_utc(),
        edited_at: None,
        data: None,
        deleted: false,
    }));
    // Queues of one frame suffice: each iteration drains what it delivered.
    let mut room = FanoutRoom::new(SUBSCRIBERS, 4);
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("10k_subscribers", |b| {
        b.iter(|| {
            room.deliver(black_box(&frame));
            assert_eq!(room.drain(), SUBSCRIBERS, "every subscriber got the frame");
        })
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
