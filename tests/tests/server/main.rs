//! End-to-end tests of the Roomcast server: one test binary (to keep link
//! times low), each test starting its own server on 127.0.0.1:0.

mod auth;
mod bad_input;
mod bounds;
mod chat;
mod connections;
mod hardening_logs;
mod hardening_teardown;
mod heartbeat;
mod limits;
mod memory;
mod names;
mod notify;
mod origins;
mod presence;
mod protocol;
mod proxy;
mod recovery;
mod rooms;
mod scaling;
mod shutdown;
mod static_files;
