//! Hot reload of `flows/`: a notify watcher validates every change and swaps the new
//! [`FlowSet`] in atomically (arc-swap). Calls in progress keep the `Arc<FlowSet>` they
//! started with; new calls get the new version. A broken edit is reported as
//! `file:line:col: message` and the old version keeps serving.
//!
//! The classifier is retrained only when the catalogue (`flows/catalog/`) changed; a prompt
//! or routing edit reuses it, which keeps edit→live well under a second
//! (measured in `tests/dialog_hot_reload.rs`, figures in docs/BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::load::FlowSet;
use crate::nlu::IntentClassifier;
use crate::yaml::Diagnostic;

/// Builds the classifier from a flows folder (its `catalog/`).
pub type ClassifierLoader =
    Box<dyn Fn(&Path) -> Result<Arc<dyn IntentClassifier>, Vec<Diagnostic>> + Send + Sync>;

/// How long the watcher waits for an editor's burst of writes to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// The live flow set.
pub struct FlowStore {
    current: ArcSwap<FlowSet>,
}

impl FlowStore {
    pub fn new(set: FlowSet) -> Arc<FlowStore> {
        Arc::new(FlowStore {
            current: ArcSwap::from_pointee(set),
        })
    }

    /// The version new calls start on.
    pub fn current(&self) -> Arc<FlowSet> {
        self.current.load_full()
    }

    pub fn swap(&self, set: FlowSet) {
        self.current.store(Arc::new(set));
    }
}

/// What a reload did.
#[derive(Debug)]
pub enum ReloadEvent {
    Swapped { version: u64, took: Duration },
    Rejected(Vec<Diagnostic>),
}

/// Reloads a flows folder into a [`FlowStore`].
pub struct Reloader {
    store: Arc<FlowStore>,
    dir: PathBuf,
    loader: ClassifierLoader,
    classifier: ArcSwap<Arc<dyn IntentClassifier>>,
}

impl Reloader {
    pub fn new(store: Arc<FlowStore>, dir: PathBuf, loader: ClassifierLoader) -> Arc<Reloader> {
        let classifier = ArcSwap::from_pointee(store.current().classifier.clone());
        Arc::new(Reloader {
            store,
            dir,
            loader,
            classifier,
        })
    }

    /// Validates the folder and swaps it in, or reports why not (the old version stays).
    pub fn reload(&self, catalog_changed: bool) -> ReloadEvent {
        let t0 = Instant::now();
        let classifier = if catalog_changed {
            match (self.loader)(&self.dir) {
                Ok(c) => c,
                Err(d) => return self.rejected(d),
            }
        } else {
            self.classifier.load_full().as_ref().clone()
        };
        match FlowSet::load(&self.dir, classifier.clone()) {
            Ok(set) => {
                let version = set.version;
                self.classifier.store(Arc::new(classifier));
                self.store.swap(set);
                let took = t0.elapsed();
                tracing::info!(version, took_ms = took.as_millis() as u64, dir = %self.dir.display(), "flows reloaded");
                ReloadEvent::Swapped { version, took }
            }
            Err(d) => self.rejected(d),
        }
    }

    fn rejected(&self, diags: Vec<Diagnostic>) -> ReloadEvent {
        for d in &diags {
            tracing::warn!(target: "voicenav::dialog::reload", "{d}");
        }
        tracing::warn!(
            errors = diags.len(),
            "flow change rejected; the previous version keeps serving"
        );
        ReloadEvent::Rejected(diags)
    }

    /// Watches the folder (recursively); each settled change is reloaded and reported to
    /// `on_event`. Stops when the returned watcher is dropped.
    pub fn watch(
        self: &Arc<Self>,
        on_event: impl Fn(ReloadEvent) + Send + 'static,
    ) -> Result<FlowWatcher, notify::Error> {
        let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx)?;
        watcher.watch(&self.dir, RecursiveMode::Recursive)?;
        let me = self.clone();
        let thread = std::thread::Builder::new()
            .name("flows-watch".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut events = vec![first];
                    while let Ok(more) = rx.recv_timeout(DEBOUNCE) {
                        events.push(more);
                    }
                    let paths: Vec<PathBuf> = events
                        .into_iter()
                        .filter_map(Result::ok)
                        .flat_map(|e| relevant(&e))
                        .collect();
                    if paths.is_empty() {
                        continue;
                    }
                    let catalog = paths
                        .iter()
                        .any(|p| p.components().any(|c| c.as_os_str() == "catalog"));
                    on_event(me.reload(catalog));
                }
            })
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(FlowWatcher {
            _watcher: watcher,
            _thread: thread,
        })
    }
}

fn relevant(e: &notify::Event) -> Vec<PathBuf> {
    use notify::EventKind;
    if !matches!(
        e.kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    ) {
        return Vec::new();
    }
    e.paths
        .iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "wav")
        })
        .cloned()
        .collect()
}

/// A running watch; dropping it stops watching.
pub struct FlowWatcher {
    _watcher: RecommendedWatcher,
    _thread: std::thread::JoinHandle<()>,
}
