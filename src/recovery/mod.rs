//! recovery (in progress).
