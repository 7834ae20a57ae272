//! (tts: see ARCHITECTURE.md)
