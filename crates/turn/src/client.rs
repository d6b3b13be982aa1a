//! TURN client core (being written).
