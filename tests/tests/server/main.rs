//! End-to-end tests of the Roomcast server: one test binary (to keep link
//! times low), each test starting its own server on 127.0.0.1:0.
//!
//! The behaviour modules (chat, recovery, presence, notify, rooms, bad
//! input) and names run each test on every engine with `every_engine!`: a
//! test `chat::x` is `chat::x::memory`, `chat::x::redis` (with a
//! `redis-server` of its own) and `chat::x::sqlite` (with a SQLite store). The other modules test the transport,
//! the binary as a process, or several instances (scaling and proxy, on
//! Redis); they run on the memory engine unless they say otherwise.

mod auth;
mod bad_input;
mod big_rooms;
mod bounds;
mod chat;
mod connections;
mod control;
mod deploy;
mod dialect_channels;
mod dialect_gateway;
mod dialect_typed;
mod durable;
mod hardening_logs;
mod hardening_teardown;
mod heartbeat;
mod hooks;
mod limits;
mod memory;
mod message_data;
mod names;
mod notify;
mod online;
mod origins;
mod pipeline;
mod presence;
mod protocol;
mod proxy;
mod recovery;
mod redis_tls;
mod rooms;
mod scaling;
mod shutdown;
mod sse;
mod static_files;
mod tokens;
mod webhooks;
