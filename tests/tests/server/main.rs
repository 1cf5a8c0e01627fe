//! End-to-end tests of the Roomcast server: one test binary (to keep link
//! times low), each test starting its own server on 127.0.0.1:0.

mod auth;
mod bad_input;
mod bounds;
mod chat;
mod heartbeat;
mod limits;
mod names;
mod notify;
mod origins;
mod presence;
mod proxy;
mod recovery;
mod rooms;
mod scaling;
mod shutdown;
mod static_files;
