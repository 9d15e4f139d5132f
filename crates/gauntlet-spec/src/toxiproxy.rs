//! Toxiproxy's toxics as gauntlet faults: one mapping for the fault proxy's Toxiproxy API and
//! for experiments imported from Chaos Toolkit (whose Toxiproxy driver names the same toxics).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::fault::{Direction, Fault, FaultKind};

/// The toxic types this API knows, with their attributes (all whole numbers).
const TOXICS: [(&str, &[&str]); 7] = [
    ("latency", &["latency", "jitter"]),
    ("bandwidth", &["rate"]),
    ("slow_close", &["delay"]),
    ("timeout", &["timeout"]),
    ("reset_peer", &["timeout"]),
    ("slicer", &["average_size", "size_variation", "delay"]),
    ("limit_data", &["bytes"]),
];

/// The largest attribute a toxic takes: the largest whole number every JSON reader keeps
/// exactly (2^53 - 1).
const MAX_ATTRIBUTE: u64 = (1 << 53) - 1;

/// The gauntlet fault a Toxiproxy toxic is. Units as Toxiproxy takes them: milliseconds,
/// except the slicer's `delay` (microseconds) and the bandwidth's `rate` (KB/s, 1000 bytes).
/// An attribute left out is 0, as in Toxiproxy; one it does not know is refused (Toxiproxy
/// would ignore it, and a misspelt attribute would leave a fault that does nothing).
/// `timeout: 0` holds every byte until the toxic is removed (gauntlet's blackhole); a
/// timeout or blackhole acts on the whole connection whichever stream it names.
pub fn toxic_fault(
    kind: &str,
    stream: Direction,
    toxicity: f64,
    attributes: &Map<String, Value>,
) -> Result<Fault, String> {
    let Some((_, known)) = TOXICS.iter().find(|(name, _)| *name == kind) else {
        let names: Vec<&str> = TOXICS.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "invalid toxic type `{kind}`: expected one of {}",
            names.join(", ")
        ));
    };
    if let Some(unknown) = attributes.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "a {kind} toxic has no attribute `{unknown}`: it takes {}",
            known.join(", ")
        ));
    }
    let number = |key: &str| -> Result<u64, String> {
        match attributes.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(value) => value.as_u64().filter(|n| *n <= MAX_ATTRIBUTE).ok_or_else(|| {
                format!(
                    "{kind} attribute `{key}` must be a whole number from 0 to {MAX_ATTRIBUTE}, not {value}"
                )
            }),
        }
    };
    let ms = |key: &str| number(key).map(Duration::from_millis);
    let kind = match kind {
        "latency" => FaultKind::Latency {
            latency: ms("latency")?,
            jitter: ms("jitter")?,
        },
        "bandwidth" => match number("rate")? {
            0 => {
                return Err(
                    "a bandwidth toxic needs a `rate` above 0 (KB/s); 0 would limit nothing".into(),
                );
            }
            rate => FaultKind::Bandwidth {
                bytes_per_second: rate.saturating_mul(1000),
            },
        },
        "slow_close" => FaultKind::SlowClose {
            delay: ms("delay")?,
        },
        "timeout" => match ms("timeout")? {
            after if after.is_zero() => FaultKind::Blackhole,
            after => FaultKind::Timeout { after },
        },
        "reset_peer" => FaultKind::Reset {
            after: ms("timeout")?,
        },
        "slicer" => FaultKind::Slicer {
            average_size: number("average_size")?,
            size_variation: number("size_variation")?,
            delay: Duration::from_micros(number("delay")?),
        },
        _ => FaultKind::LimitData {
            bytes: number("bytes")?,
        },
    };
    let fault = Fault {
        kind,
        toxicity,
        direction: stream,
        duration: None,
    };
    match fault.problem() {
        Some(problem) => Err(problem),
        None => Ok(fault),
    }
}

/// A toxic's attributes as Toxiproxy shows them: every one its type has, in its units.
pub fn shown_attributes(fault: &Fault) -> Map<String, Value> {
    let ms = |d: &Duration| json!(d.as_millis() as u64);
    let shown = match &fault.kind {
        FaultKind::Latency { latency, jitter } => {
            json!({"latency": ms(latency), "jitter": ms(jitter)})
        }
        FaultKind::Bandwidth { bytes_per_second } => json!({"rate": bytes_per_second / 1000}),
        FaultKind::SlowClose { delay } => json!({"delay": ms(delay)}),
        FaultKind::Blackhole => json!({"timeout": 0}),
        FaultKind::Timeout { after } | FaultKind::Reset { after } => json!({"timeout": ms(after)}),
        FaultKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => json!({
            "average_size": average_size,
            "size_variation": size_variation,
            "delay": delay.as_micros() as u64,
        }),
        FaultKind::LimitData { bytes } => json!({ "bytes": bytes }),
        _ => json!({}),
    };
    match shown {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn each_toxic_type_is_the_fault_of_the_same_effect() {
        let fault = |kind, attrs| toxic_fault(kind, Direction::Upstream, 1.0, &attributes(attrs));
        assert_eq!(
            fault("latency", json!({"latency": 200, "jitter": 50}))
                .unwrap()
                .kind,
            FaultKind::Latency {
                latency: Duration::from_millis(200),
                jitter: Duration::from_millis(50)
            }
        );
        assert_eq!(
            fault("bandwidth", json!({"rate": 64})).unwrap().kind,
            FaultKind::Bandwidth {
                bytes_per_second: 64_000
            }
        );
        assert_eq!(
            fault("timeout", json!({"timeout": 0})).unwrap().kind,
            FaultKind::Blackhole
        );
        assert_eq!(
            fault("reset_peer", json!({})).unwrap().kind,
            FaultKind::Reset {
                after: Duration::ZERO
            }
        );
        assert_eq!(
            fault(
                "slicer",
                json!({"average_size": 10, "size_variation": 3, "delay": 500})
            )
            .unwrap()
            .kind,
            FaultKind::Slicer {
                average_size: 10,
                size_variation: 3,
                delay: Duration::from_micros(500)
            }
        );
        let limit = fault("limit_data", json!({"bytes": 4})).unwrap();
        assert_eq!(limit.direction, Direction::Upstream);
        assert_eq!(shown_attributes(&limit), attributes(json!({"bytes": 4})));
    }

    #[test]
    fn what_would_act_differently_than_asked_is_refused_by_name() {
        let problem = |kind, attrs: Value, toxicity| {
            toxic_fault(kind, Direction::Downstream, toxicity, &attributes(attrs)).unwrap_err()
        };
        assert!(problem("latancy", json!({}), 1.0).contains("invalid toxic type `latancy`"));
        assert!(problem("latency", json!({"latancy": 5}), 1.0).contains("no attribute `latancy`"));
        assert!(problem("latency", json!({"latency": -5}), 1.0).contains("whole number"));
        assert!(problem("latency", json!({"latency": 1.5}), 1.0).contains("whole number"));
        assert!(problem("bandwidth", json!({"rate": 0}), 1.0).contains("above 0"));
        assert!(
            problem(
                "slicer",
                json!({"average_size": 4, "size_variation": 4}),
                1.0
            )
            .contains("less than the average")
        );
        assert!(problem("latency", json!({}), 1.5).contains("toxicity"));
    }

    proptest::proptest! {
        /// Any attributes, type, stream and toxicity: a fault or a refusal, never a panic,
        /// and a fault's shown attributes read back as the same fault.
        #[test]
        fn any_toxic_body_is_a_fault_or_a_refusal(
            kind in proptest::sample::select(vec!["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "x"]),
            keys in proptest::collection::vec(proptest::sample::select(vec!["latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes", "other"]), 0..4),
            values in proptest::collection::vec(proptest::prelude::any::<i64>(), 4),
            toxicity in -1.0f64..2.0,
        ) {
            let attrs: Map<String, Value> = keys.iter().zip(&values).map(|(k, v)| (k.to_string(), json!(v))).collect();
            if let Ok(fault) = toxic_fault(kind, Direction::Downstream, toxicity, &attrs) {
                let again = toxic_fault(kind, Direction::Downstream, toxicity, &shown_attributes(&fault)).unwrap();
                proptest::prop_assert_eq!(again, fault);
            }
        }
    }
}
