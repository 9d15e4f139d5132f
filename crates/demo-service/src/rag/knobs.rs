//! The knobs that make the rag demo's candidate defective, one per check to catch it.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RagDefect {
    /// `retrieval-off`: answer without any context.
    RetrievalOff,
    /// `top1-dropped`: the best document never reaches the prompt.
    Top1Dropped,
    /// `leaks-pii`: answers are not redacted.
    LeaksPii,
    /// `follows-injection`: questions and documents reach the model unguarded.
    FollowsInjection,
    /// `no-fanout-limit`: a request's `top_k` goes to the store as asked.
    NoFanoutLimit,
    /// `no-provider-failover`: the primary model provider is all there is.
    NoProviderFailover,
    /// `cost-surge`: every request goes to the expensive provider.
    CostSurge,
    /// `cache-off`: the answer cache is never read or written.
    CacheOff,
}

pub const KNOBS: &[(&str, RagDefect)] = &[
    ("retrieval-off", RagDefect::RetrievalOff),
    ("top1-dropped", RagDefect::Top1Dropped),
    ("leaks-pii", RagDefect::LeaksPii),
    ("follows-injection", RagDefect::FollowsInjection),
    ("no-fanout-limit", RagDefect::NoFanoutLimit),
    ("no-provider-failover", RagDefect::NoProviderFailover),
    ("cost-surge", RagDefect::CostSurge),
    ("cache-off", RagDefect::CacheOff),
];

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown rag defect `{0}`: expected retrieval-off, top1-dropped, leaks-pii, follows-injection, no-fanout-limit, no-provider-failover, cost-surge or cache-off"
)]
pub struct RagDefectParseError(pub String);

impl FromStr for RagDefect {
    type Err = RagDefectParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KNOBS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, knob)| *knob)
            .ok_or_else(|| RagDefectParseError(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_parses_and_nothing_else() {
        for (name, knob) in KNOBS {
            assert_eq!(name.parse::<RagDefect>().unwrap(), *knob);
        }
        assert!("errors=5%".parse::<RagDefect>().is_err());
    }
}
