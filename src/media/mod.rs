//! (media: see ARCHITECTURE.md)
