//! profile check, explain and tune.
