//! (asr: see ARCHITECTURE.md)
