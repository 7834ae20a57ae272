//! Dialog engine: YAML flows ([`schema`], documented in `flows/README.md`), loading and
//! validation into a compiled [`FlowSet`] ([`load`], [`graph`] with petgraph), DOT/SVG
//! drawings, the sans-IO per-call [`Session`] ([`runtime`]), caller lookup (seniors,
//! dialect areas: [`caller`]) and hot reload ([`reload`], notify + arc-swap).
//!
//! # The runtime contract
//! A [`Session`] is a plain state machine: no clock, no IO, no tokio. The driver (the call
//! task, `replay`) owns the clock and the media and feeds it:
//!
//! - [`Session::new`]`(flows: Arc<FlowSet>, caller: CallerInfo, now)` starts at the main
//!   flow's entry; [`Session::resume`]`(flows, caller, snapshot, now)` restarts at a
//!   [`Snapshot`]'s node with its variables and transcript.
//! - [`Session::handle_event`]`(now, Event)` — [`Event::Utterance`] (a classified final
//!   recognition result), [`Event::Dtmf`], [`Event::SpeechStarted`],
//!   [`Event::PromptFinished`], [`Event::BargeIn`], [`Event::TransferResult`],
//!   [`Event::CallerHangup`].
//! - [`Session::handle_timeout`]`(now)` when [`Session::poll_timeout`] is due (timers are
//!   named by [`Timer`]: no-input, max-speech, transfer guard).
//! - [`Session::poll_action`] yields [`Action`]s: `Play(Prompt)` (text, rate, volume,
//!   optional wav, barge-in, disclosure; the source says whether it is a node prompt, a
//!   `say`, or a catalogue self-service `Answer`), `Listen(ListenSpec)` (grammar,
//!   no-input, end-of-speech silence, max speech, barge-in, keys, digit collection),
//!   `Transfer { queue, context }` and `Hangup`.
//!
//! After every input the driver drains actions, then sleeps until the next timeout:
//!
//! ```ignore
//! let mut s = Session::new(store.current(), caller, now);
//! loop {
//!     while let Some(a) = s.poll_action() {
//!         match a {
//!             Action::Play(p) => player.play(p),   // later: Event::PromptFinished / BargeIn
//!             Action::Listen(l) => asr.listen(l),
//!             Action::Transfer { queue, context } => sip.refer(queue, context), // → TransferResult
//!             Action::Hangup => sip.bye(),
//!         }
//!     }
//!     if s.is_finished() { break; }
//!     match wait_for_input_until(s.poll_timeout()) {
//!         Some(event) => s.handle_event(now(), event),
//!         None => s.handle_timeout(now()),
//!     }
//! }
//! ```
//!
//! The no-input timer starts only once every queued prompt is reported finished (or the
//! caller barged in), so a driver must answer each `Play` with `PromptFinished` (replay
//! does so at once: prompts take no simulated time there).
//!
//! [`Session::current_node`] and [`Session::snapshot`] expose where the call is;
//! [`Session::outcome`] how it left the dialog.

pub mod caller;
pub mod cli;
pub mod graph;
pub mod load;
pub mod reload;
pub mod runtime;
pub mod schema;
#[doc(hidden)]
pub mod testing;

pub use caller::{CallerDirectory, CallerInfo};
pub use load::{FlowSet, MAIN_FLOW};
pub use reload::{FlowStore, FlowWatcher, ReloadEvent, Reloader};
pub use runtime::{
    Action, DigitCollection, Event, ListenSpec, Outcome, Prompt, PromptSource, Session, Snapshot,
    Timer,
};

use std::path::Path;
use std::sync::Arc;

use crate::nlu::IntentClassifier;
use crate::yaml::Diagnostic;

/// The classifier a flows folder is validated and run with: `nlu::Nlu` trained on the
/// folder's `catalog/` with the grammars of its sibling `grammars/`. A folder without a
/// catalogue (a scratch copy of a few flow files) uses the one of `./flows`, and missing
/// grammars come from `./grammars`, else from the source tree voicenav was built from.
pub fn classifier_for(flows: &Path) -> Result<Arc<dyn IntentClassifier>, Vec<Diagnostic>> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    let first_with = |cands: [&Path; 3], sub: &str| {
        cands
            .into_iter()
            .find(|c| c.join(sub).is_dir())
            .unwrap_or(cands[0])
            .to_path_buf()
    };
    let catalog_home = first_with([flows, Path::new("flows"), &built.join("flows")], "catalog");
    let own_grammars = crate::nlu::default_grammars_dir(flows);
    let grammars = [
        own_grammars.clone(),
        "grammars".into(),
        built.join("grammars"),
    ]
    .into_iter()
    .find(|g| g.is_dir())
    .unwrap_or(own_grammars);
    if catalog_home != flows {
        tracing::info!(catalog = %catalog_home.join("catalog").display(), "no catalog/ in {}; using this one", flows.display());
    }
    Ok(Arc::new(crate::nlu::Nlu::load_with(
        &catalog_home,
        &grammars,
    )?))
}
