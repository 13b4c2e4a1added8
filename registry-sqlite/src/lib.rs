//! SQLite registry (work in progress).
