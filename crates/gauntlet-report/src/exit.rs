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

/// The exit code of a decision. A report-only run (`gating: none`) exits 0 whatever it
/// decided, except when it was aborted: a run that did not finish never says GO.
pub fn of(decision: crate::Decision, report_only: bool, strict: bool) -> i32 {
    use crate::Decision;
    match decision {
        Decision::Aborted => NO_GO,
        _ if report_only => GO,
        Decision::Go => GO,
        Decision::Conditional if strict => NO_GO,
        Decision::Conditional => GO,
        Decision::NoGo => NO_GO,
        Decision::Inconclusive => INCONCLUSIVE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decision;

    #[test]
    fn exit_codes_follow_the_decision_and_the_mode() {
        assert_eq!(of(Decision::Go, false, false), GO);
        assert_eq!(of(Decision::Conditional, false, false), GO);
        assert_eq!(of(Decision::Conditional, false, true), NO_GO);
        assert_eq!(of(Decision::NoGo, false, false), NO_GO);
        assert_eq!(of(Decision::Inconclusive, false, false), INCONCLUSIVE);
        assert_eq!(of(Decision::NoGo, true, false), GO);
        assert_eq!(of(Decision::Inconclusive, true, true), GO);
        assert_eq!(of(Decision::Aborted, true, false), NO_GO);
        assert_eq!(of(Decision::Aborted, false, false), NO_GO);
    }
}
