//! The Socket.IO dialect's end-to-end test (`tests/socketio/`): the real
//! `socket.io-client` from npm, in Node, against the real server, over
//! WebSocket and over long-polling, beside native clients.

use anyhow::Result;

use crate::sdk;
use crate::sdk::fixture::{Backing, Fixture};
use crate::tally::Tally;
use crate::{build_server, target_dir, workspace_root};

/// Runs the suite; returns how many of its tests passed and failed.
pub fn test() -> Result<Tally> {
    sdk::require_node()?;
    let root = workspace_root();
    let server = build_server(&root)?;
    let artifacts = target_dir(&root).join("socketio-test");
    std::fs::create_dir_all(&artifacts)?;
    let suite = root.join("tests/socketio");
    sdk::npm(&suite, &["ci", "--no-audit", "--no-fund"])?;
    let fixture = Fixture::start(&server, None, Backing::Memory, &artifacts.join("server.log"))?;
    sdk::npm_test(&suite, &fixture, &artifacts, "Socket.IO dialect")
}
