//! TURN cores (placeholder while the crate is written).
