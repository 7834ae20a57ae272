//! (dialog: see ARCHITECTURE.md)
