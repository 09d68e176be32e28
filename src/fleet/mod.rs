//! fleet (in progress).
