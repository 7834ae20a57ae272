//! (replay: see ARCHITECTURE.md)
