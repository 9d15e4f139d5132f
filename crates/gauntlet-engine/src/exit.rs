//! Exit codes, in one place. A CI pipeline branches on these, so they never change meaning.

/// GO, or CONDITIONAL without `--strict`, or any decision under `gating: none`.
pub const GO: i32 = 0;
/// NO-GO, ABORTED, or CONDITIONAL with `--strict`.
pub const NO_GO: i32 = 1;
/// The input was invalid (spec, flags); nothing ran.
pub const INVALID_INPUT: i32 = 2;
/// Not enough evidence to decide: a measurement could not be taken.
pub const INCONCLUSIVE: i32 = 3;
/// Gauntlet itself could not do its job (the run store unreadable, the disk full, a bug): no
/// decision about the release was reached or kept. Never 0, and never mistaken for NO-GO.
pub const INTERNAL: i32 = 4;
