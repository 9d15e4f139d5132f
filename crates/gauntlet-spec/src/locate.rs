//! Where each key of a YAML document is: `steps.chaos.drills[2].faults[0].size` → line and
//! column. Validation that looks at a value after parsing points at its key with this, so a
//! bound broken deep inside a drill is reported at its own `file:line:col`, not at the drill.
//! The parser's events are walked once; aliases are not followed (so nothing is expanded).

use std::collections::BTreeMap;

use serde_saphyr::granit_parser::{Event, Parser};

/// One open collection while walking: a mapping (with the key whose value comes next) or a
/// sequence (with the index of the next item).
enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

/// Every key path in `text` with its 1-based line and column. Paths join keys with `.` and
/// give sequence items as `[i]`. A document that does not parse gives what came before.
pub fn key_locations(text: &str) -> BTreeMap<String, (usize, usize)> {
    let mut found = BTreeMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            break;
        };
        match event {
            Event::Scalar(value, ..) => {
                let at = (span.start.line(), span.start.col() + 1);
                match stack.last_mut() {
                    Some(Frame::Map { key: key @ None }) => {
                        *key = Some(value.to_string());
                        found.entry(path(&stack)).or_insert(at);
                    }
                    // A scalar item of a sequence has a place of its own: `protected[2]`.
                    Some(Frame::Seq { index }) => {
                        let index = *index;
                        let item = format!("{}[{index}]", path(&stack[..stack.len() - 1]));
                        found.entry(item).or_insert(at);
                        advance(&mut stack);
                    }
                    _ => advance(&mut stack),
                }
            }
            Event::Alias(_) => advance(&mut stack),
            Event::MappingStart(..) => stack.push(Frame::Map { key: None }),
            Event::SequenceStart(..) => stack.push(Frame::Seq { index: 0 }),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                advance(&mut stack);
            }
            _ => {}
        }
    }
    found
}

/// A value was completed in the innermost collection.
fn advance(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { key }) => *key = None,
        Some(Frame::Seq { index }) => *index += 1,
        None => {}
    }
}

fn path(stack: &[Frame]) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Map { key: Some(key) } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Frame::Map { key: None } => {}
            Frame::Seq { index } => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_block_and_flow_collections() {
        let text = "steps:\n  chaos:\n    drills:\n      - name: a\n        faults: [{kind: memory, size: 1GiB}]\n      - {name: b, duration: 1s}\n";
        let found = key_locations(text);
        assert_eq!(found["steps.chaos.drills"], (3, 5));
        assert_eq!(found["steps.chaos.drills[0].faults[0].size"], (5, 33));
        assert_eq!(found["steps.chaos.drills[1].duration"], (6, 19));
        let found = key_locations("trust:\n  protected: [a.txt, ../b.txt]\n");
        assert_eq!(found["trust.protected[1]"], (2, 22));
    }
}
