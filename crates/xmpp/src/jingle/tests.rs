//! Jingle tests.
