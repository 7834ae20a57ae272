//! (sip: see ARCHITECTURE.md)
