//! Client core tests.
