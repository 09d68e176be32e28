//! A LiveKit participant's media side: the WebRTC transport of a room (the
//! subscriber and publisher peer connections, over UDP, in pure Rust) and
//! LiveKit's data packets and text streams carried on its data channels.
//!
//! Both are sans-IO cores driven with time passed in; [`rtc::driver`] is the
//! one thin tokio task that owns the sockets and the clock.

pub mod data;
pub mod rtc;
