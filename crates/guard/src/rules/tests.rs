//! The rules as a whole: what each detector finds in running text, and what it leaves alone.

use super::Rules;
use crate::{Evidence, Finding, Kind};

fn rules() -> Rules {
    Rules::new(&["US".to_string(), "GB".to_string()]).expect("rules build")
}

/// The findings of `kind` scoring at least 0.5 (what the detector keeps), as text.
fn found(text: &str, kind: Kind) -> Vec<String> {
    kept(text)
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| text[f.start..f.end].to_string())
        .collect()
}

fn kept(text: &str) -> Vec<Finding> {
    rules()
        .find(text)
        .into_iter()
        .filter(|f| f.score >= 0.5)
        .collect()
}

#[test]
fn an_email_is_found_with_its_exact_span() {
    assert_eq!(
        found("write to jane.doe+x@example.co.uk.", Kind::Email),
        ["jane.doe+x@example.co.uk"]
    );
    assert!(found("ping @jane on slack", Kind::Email).is_empty());
}

#[test]
fn evidence_is_checksum_only_for_validated_values() {
    let f = kept("card 4242 4242 4242 4242");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].evidence, Evidence::Checksum);
}
