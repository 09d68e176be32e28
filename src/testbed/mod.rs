//! The other side of every boundary, for tests, `dev`, `simulate` and the
//! simulator commands. Production layers never import it.

pub mod speech;
