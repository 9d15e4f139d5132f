//! Pure statistics for release decisions, with no IO: each judge takes observations one at
//! a time in O(1) and says continue, accept or reject, with the statistic and the boundaries
//! so the trajectory can be drawn and the verdict explained.
//!
//! - [`Sprt`]: Wald's sequential probability ratio test for an error rate against a known p0.
//! - [`TwoSample`]: baseline and candidate side by side, no p0 needed; valid however often
//!   it is read (a test martingale for reject, confidence sequences for accept).
//! - [`LatencyJudge`]: the same two-sample test on the rate of slow requests.
//! - [`Paired`]: baseline and candidate on the same items (a golden set), McNemar's setting
//!   made sequential: betting martingales on the paired differences.
//! - [`BurnRate`]: multi-window error-budget burn (Google SRE Workbook).
//! - [`mann_whitney`]: the fixed-horizon rank test, O(n log n), for end-of-stage summaries.
//!
//! ```
//! use gauntlet_stats::{Sprt, Verdict};
//! let mut sprt = Sprt::new(0.01, 0.04, 0.05, 0.05).unwrap();
//! let mut verdict = Verdict::Continue;
//! while verdict == Verdict::Continue {
//!     verdict = sprt.observe(true);
//! }
//! assert_eq!(verdict, Verdict::Accept);
//! assert!(sprt.samples() < 120);
//! ```

mod binomial;
mod burn;
mod judge;
mod latency;
mod mann_whitney;
mod paired;
pub mod params;
mod sprt;
mod two_sample;

pub use binomial::{ConfidenceBounds, clopper_pearson_upper, mixture_bounds};
pub use burn::{BurnRate, BurnWindow, budget_remaining, burn_rate};
pub use judge::{Arm, Judge, JudgeKind, Observation, Point, Trajectory, Verdict, split_alpha};
pub use latency::LatencyJudge;
pub use mann_whitney::VARIANT as MANN_WHITNEY_VARIANT;
pub use mann_whitney::{MannWhitney, mann_whitney};
pub use paired::{Paired, fewest_to_accept};
pub use params::ParamError;
pub use sprt::{Sprt, fixed_horizon_n};
pub use two_sample::TwoSample;
