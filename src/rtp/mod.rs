//! (rtp: see ARCHITECTURE.md)
