//! The components, each usable on its own below a `use_roomcast` call.

mod attachments;
mod chat;
mod connection;
mod format;
mod message;
mod presence;
mod room_list;
mod toasts;
mod typing;

pub use attachments::Attachments;
pub use chat::{Chat, Composer, MessageList};
pub use connection::{ConnectionBadge, ReconnectBanner};
pub use presence::{PresenceList, StatusPicker};
pub use room_list::{RoomList, room_label};
pub use toasts::NotificationToasts;
pub use typing::TypingIndicator;
