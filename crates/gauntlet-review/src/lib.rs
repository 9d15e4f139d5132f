//! What is decided about a run after its steps: the sign-offs it needs and has, the readiness
//! items people vouch for, the readiness checklist scored from the run's checks, and what
//! changed since an earlier run. The engine calls these at the end of a run; the binary calls
//! them again on a stored run (`gauntlet signoff`, `readiness`, `certificate`, `drift`).
//!
//! ```
//! let plan = gauntlet_spec::plan_str(
//!     "g.yaml",
//!     "schema_version: 1\nservice: {name: s, version: '1', owners: {security: a@x}}\n\
//!      targets: {candidate: {url: 'http://127.0.0.1:1'}}\n\
//!      traffic: {rate: 1/s, requests: [{path: /}]}\nsignoffs: {required: [security]}\n",
//!     &Default::default(),
//!     1,
//! )
//! .unwrap();
//! let mut decided = gauntlet_report::Decided {
//!     decision: gauntlet_report::Decision::Go,
//!     conditions: Vec::new(),
//!     summary: "GO: every check passed".into(),
//! };
//! gauntlet_review::signoff::require(&mut decided, &plan);
//! assert_eq!(decided.decision, gauntlet_report::Decision::Conditional);
//! ```

pub mod certificate;
pub mod drift;
pub mod gameday;
pub mod readiness;
pub mod signoff;
pub mod vouch;

/// Now, as RFC 3339 with milliseconds (UTC).
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
