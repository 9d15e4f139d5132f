//! The incident timeline's bounds: how soon a page must be acknowledged (MTTA) and the
//! service restored (MTTR), measured on every drill and the rollback rehearsal; and who
//! acknowledges in an unattended run (the configured responder).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::limits::{HOUR, MINUTE};
use crate::units::Duration;
use crate::validate::Problems;

/// `incident:` at the top level.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// From an expected alert reaching gauntlet to its acknowledgement (`gauntlet ack RUN
    /// DRILL`, the server's API, or the responder).
    #[serde(default = "five_minutes")]
    pub mtta: Duration,
    /// From the fault going in to the steady state holding again.
    #[serde(default = "thirty_minutes")]
    pub mttr: Duration,
    /// In an unattended run, who acknowledges a page nobody has: the responder, after
    /// `ack_after` (recorded as the responder, never as a person).
    #[serde(default)]
    pub responder: Option<Responder>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Responder {
    pub ack_after: Duration,
}

impl Default for Incident {
    fn default() -> Self {
        Self {
            mtta: five_minutes(),
            mttr: thirty_minutes(),
            responder: None,
        }
    }
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

fn thirty_minutes() -> Duration {
    Duration::from_secs(1800)
}

impl Incident {
    pub(crate) fn check(&self, p: &mut Problems<'_>) {
        p.duration("incident.mtta", self.mtta, false, 24 * HOUR);
        p.duration("incident.mttr", self.mttr, false, 24 * HOUR);
        if let Some(responder) = &self.responder {
            p.duration(
                "incident.responder.ack_after",
                responder.ack_after,
                false,
                10 * MINUTE,
            );
            if responder.ack_after > self.mtta {
                p.key(
                    "incident.responder.ack_after",
                    format!(
                        "the responder acknowledges after {}, beyond the MTTA bound ({})",
                        responder.ack_after, self.mtta
                    ),
                    Some(
                        "an unattended run would then fail every MTTA: make `ack_after` shorter"
                            .into(),
                    ),
                );
            }
        }
    }
}
