//! The run report: its model (the `report.json` schema, versioned), its renderings —
//! Markdown for pull requests and CI summaries, JUnit XML for any CI's test view — and
//! the atomic file writes every report and evidence file goes through.
//!
//! ```
//! use gauntlet_report::{Check, Outcome, Severity};
//! let check = Check::new("security", "auth.write", Severity::Hard)
//!     .outcome(Outcome::Pass, "refused with 401 without credentials");
//! assert!(check.outcome.is_pass());
//! ```

mod atomic;
pub mod certificate;
pub mod exit;
pub mod gameday;
mod junit;
mod markdown;
mod model;
pub mod svg;

pub use atomic::{sha256_hex, write_atomic};
pub use junit::to_junit;
pub use markdown::{
    cell as table_cell, gates_markdown, readiness_markdown, taxonomy_markdown, to_markdown,
};
pub use model::*;
