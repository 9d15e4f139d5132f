//! The production-readiness checklist, as a spec writes it (`readiness:` at the top):
//! weighted categories of items, each backed by checks (`automated`) or vouched for by a
//! person (`attested`), and waivers with an owner and an expiry; with their checks.

use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Section, StepName};
use crate::model::Severity;
use crate::plan::{Seed, StepPlan};
use crate::units::{Duration, Percent, UnitError};
use crate::validate::{Context, Problems, quoted};

/// The production-readiness checklist: weighted categories of items, each backed by checks
/// from the steps (`automated`) or vouched for by a person (`attested`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadinessSection {
    #[serde(default)]
    pub severity: Severity,
    /// The overall score a GO needs.
    #[serde(default = "default_minimum")]
    pub minimum: Percent,
    /// The longest a waiver may run (at most 14d).
    #[serde(default = "default_max_waiver")]
    #[schemars(with = "String")]
    pub max_waiver: Spanned<Duration>,
    #[schemars(with = "Vec<Category>")]
    pub categories: Spanned<Vec<Category>>,
}

fn default_weight() -> f64 {
    1.0
}

fn default_minimum() -> Percent {
    Percent::from_ratio("80%", 0.8)
}

fn default_max_waiver() -> Spanned<Duration> {
    Spanned {
        value: Duration::from_secs(MAX_WAIVER_SECS),
        referenced: serde_saphyr::Location::UNKNOWN,
        defined: serde_saphyr::Location::UNKNOWN,
    }
}

/// No waiver runs longer than this, whatever the spec says.
pub const MAX_WAIVER_SECS: u64 = 14 * 86_400;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    #[serde(default = "default_weight")]
    pub weight: f64,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    /// The role (from `service.owners`) that answers for the item and may waive it.
    #[schemars(with = "String")]
    pub owner: Spanned<String>,
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Check ids this item rests on: `rollback_rehearsal.rto`, or `dr.*` for a whole step.
    #[serde(default)]
    pub automated: Vec<String>,
    /// A person vouches for it.
    #[serde(default)]
    pub attested: Option<Attestation>,
    #[serde(default)]
    pub waiver: Option<Waiver>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Who vouches (a person, e.g. an email address).
    pub by: String,
    /// Where the evidence is: a link or a path.
    pub evidence: String,
    #[serde(default)]
    pub status: AttestedStatus,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestedStatus {
    Done,
    Partial,
    #[default]
    Pending,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The item's owner role: only the owner may waive.
    #[schemars(with = "String")]
    pub by: Spanned<String>,
    pub reason: String,
    /// `2026-11-20` or an RFC 3339 time.
    #[schemars(with = "String")]
    pub granted: Spanned<String>,
    /// At most `max_waiver` after `granted`; after it, the waiver is a failure.
    #[schemars(with = "String")]
    pub expires: Spanned<String>,
}

/// Seconds since the Unix epoch for `2026-11-20` (the end of that day, UTC) or an RFC 3339
/// time.
pub fn parse_day_or_time(text: &str, end_of_day: bool) -> Result<u64, UnitError> {
    day_or_time(text, end_of_day).map_err(UnitError)
}

fn day_or_time(text: &str, end_of_day: bool) -> Result<u64, String> {
    let text = text.trim();
    let full = if text.len() == 10 && !text.contains('T') {
        format!(
            "{text}T{}Z",
            if end_of_day { "23:59:59" } else { "00:00:00" }
        )
    } else {
        text.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .or_else(|_| humantime::parse_rfc3339(&full))
        .map_err(|e| format!("`{text}` is not a date (2026-11-20) or an RFC 3339 time: {e}"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| format!("`{text}` is before 1970"))
}

impl Section for ReadinessSection {
    fn step(&self) -> StepName {
        StepName::Readiness
    }

    fn owner(&self) -> Option<&Spanned<String>> {
        None
    }

    fn check(&self, _cx: &Context<'_>, p: &mut Problems<'_>) {
        let longest = self.max_waiver.value.as_std().as_secs();
        if longest > MAX_WAIVER_SECS {
            p.at(
                self.max_waiver.referenced,
                format!(
                    "`max_waiver: {}` is longer than the 14 days any waiver may run",
                    self.max_waiver.value
                ),
                Some("write `max_waiver: 14d` or less".into()),
            );
        }
        if self.categories.value.is_empty() {
            p.at(
                self.categories.referenced,
                "`readiness.categories` is empty".into(),
                Some("list at least one category with items".into()),
            );
        }
        for (i, category) in self.categories.value.iter().enumerate() {
            let at = format!("readiness.categories[{i}]");
            if !(category.weight.is_finite() && category.weight > 0.0) {
                p.key(
                    &format!("{at}.weight"),
                    format!(
                        "category `{}`: the weight must be a positive number",
                        quoted(&category.name)
                    ),
                    None,
                );
            }
            for item in &category.items {
                item.check(p, longest.min(MAX_WAIVER_SECS));
            }
        }
    }

    fn worst_case(&self, _cx: &Context<'_>) -> Vec<(String, StdDuration)> {
        Vec::new()
    }

    fn plan(&self, _cx: &Context<'_>, _seed: Seed) -> Result<StepPlan, String> {
        let categories = self
            .categories
            .value
            .iter()
            .map(|c| {
                let items = c
                    .items
                    .iter()
                    .map(Item::resolve)
                    .collect::<Result<_, String>>()?;
                Ok(CategoryPlan {
                    name: c.name.clone(),
                    weight: c.weight,
                    items,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(StepPlan::Readiness(ReadinessPlan {
            severity: self.severity,
            minimum: self.minimum.clone(),
            categories,
        }))
    }
}

impl Item {
    fn check(&self, p: &mut Problems<'_>, longest: u64) {
        let named = format!("item `{}`", quoted(&self.name));
        if !(self.weight.is_finite() && self.weight > 0.0) {
            p.at(
                self.owner.referenced,
                format!("{named}: the weight must be a positive number"),
                None,
            );
        }
        if self.automated.is_empty() == self.attested.is_none() {
            p.at(
                self.owner.referenced,
                format!("{named} needs exactly one of `automated:` (check ids) and `attested:`"),
                Some("`automated: [dr.rto]` binds it to a check; `attested: {by, evidence, status}` to a person".into()),
            );
        }
        for bound in &self.automated {
            let step = bound.split('.').next().unwrap_or_default();
            if step != super::SETUP
                && let Err(e) = step.parse::<StepName>()
            {
                p.at(
                    self.owner.referenced,
                    format!("{named}: `{}` names no step", quoted(bound)),
                    Some(match e.close {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("checks are named STEP.NAME; steps: {}", StepName::list()),
                    }),
                );
            }
        }
        if let Some(waiver) = &self.waiver {
            waiver.check(p, &named, &self.owner.value, longest);
        }
    }
}

impl Waiver {
    fn check(&self, p: &mut Problems<'_>, named: &str, owner: &str, longest: u64) {
        if self.by.value != owner {
            p.at(
                self.by.referenced,
                format!(
                    "{named} is owned by `{owner}`; `{}` cannot waive it",
                    quoted(&self.by.value)
                ),
                Some(format!("only the owner waives: `by: {owner}`")),
            );
        }
        if self.reason.trim().is_empty() {
            p.at(
                self.by.referenced,
                format!("{named}: the waiver gives no reason"),
                None,
            );
        }
        let granted = parse_day_or_time(&self.granted.value, false);
        // Lengths count calendar days (a waiver granted on the 1st that expires on the
        // 15th runs 14 days); it lapses at the end of its expiry day.
        let expires = parse_day_or_time(&self.expires.value, false);
        if let Err(e) = &granted {
            p.at(self.granted.referenced, format!("{named}: {e}"), None);
        }
        if let Err(e) = &expires {
            p.at(self.expires.referenced, format!("{named}: {e}"), None);
        }
        if let (Ok(granted), Ok(expires)) = (granted, expires) {
            let days = |secs: u64| secs.div_ceil(86_400);
            if expires < granted {
                p.at(
                    self.expires.referenced,
                    format!("{named}: the waiver expires before it is granted"),
                    None,
                );
            } else if expires - granted > longest {
                p.at(
                    self.expires.referenced,
                    format!(
                        "{named}: the waiver runs {} days; a waiver may run at most {} days",
                        days(expires - granted),
                        days(longest)
                    ),
                    Some("fix the item, or waive it for a shorter time and waive again when it expires".into()),
                );
            }
        }
    }
}

impl Item {
    fn resolve(&self) -> Result<ItemPlan, String> {
        let waiver = match &self.waiver {
            Some(w) => Some(WaiverPlan {
                by: w.by.value.clone(),
                reason: w.reason.clone(),
                // It lapses at the end of its expiry day.
                expires_at: day_or_time(&w.expires.value, true)?,
            }),
            None => None,
        };
        Ok(ItemPlan {
            name: self.name.clone(),
            owner: self.owner.value.clone(),
            weight: self.weight,
            automated: self.automated.clone(),
            attested: self.attested.clone(),
            waiver,
        })
    }
}

/// The checklist as a run scores it, waiver dates parsed.
#[derive(Debug, Clone)]
pub struct ReadinessPlan {
    pub severity: Severity,
    /// The overall score a GO needs.
    pub minimum: Percent,
    pub categories: Vec<CategoryPlan>,
}

#[derive(Debug, Clone)]
pub struct CategoryPlan {
    pub name: String,
    pub weight: f64,
    pub items: Vec<ItemPlan>,
}

#[derive(Debug, Clone)]
pub struct ItemPlan {
    pub name: String,
    /// The role that answers for it and may waive it.
    pub owner: String,
    pub weight: f64,
    pub automated: Vec<String>,
    pub attested: Option<Attestation>,
    pub waiver: Option<WaiverPlan>,
}

#[derive(Debug, Clone)]
pub struct WaiverPlan {
    pub by: String,
    pub reason: String,
    /// Seconds since the Unix epoch at which it lapses (the end of its expiry day).
    pub expires_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times_parse() {
        let day = parse_day_or_time("2026-11-20", false).unwrap();
        assert_eq!(parse_day_or_time("2026-11-20", true).unwrap(), day + 86_399);
        assert_eq!(
            parse_day_or_time("2026-11-20T00:00:00Z", false).unwrap(),
            day
        );
        assert!(parse_day_or_time("20 Nov", false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn day_parsing_never_panics(text in "\\PC{0,40}") {
            let _ = parse_day_or_time(&text, true);
        }
    }
}
