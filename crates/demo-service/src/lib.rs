//! The demo system under test: a small but real HTTP service, run as separate OS processes
//! by `gauntlet demo`. Two roles:
//!
//! - **app** — the service itself: `/healthz`; `GET /items/{id}` backed by a data file that
//!   carries its own sha256 manifest; `POST /items` persisted to its own SQLite file behind
//!   API-key auth; `GET /quote`, which calls a primary provider and fails over to a
//!   secondary; `/metrics` in the Prometheus text format; a per-client rate limit (429); a
//!   path allow-list; refusal of prompt-control tokens in bodies.
//! - **provider** — a dependency the app calls for quotes.
//! - **rag**, **docs**, **llm**, **cache** — the rag demo ([`rag`]): a retrieval-augmented
//!   answer service, its document store, its model providers and its answer cache.
//!
//! Defects ([`Defect`]) are set on the candidate only, for gauntlet's steps to catch.

mod app;
mod defect;
mod metrics;
mod provider;
pub mod rag;
mod server;

pub use app::{AppConfig, run_app};
pub use defect::{Defect, DefectParseError};
pub use provider::{ProviderConfig, run_provider};
