//! Phone numbers, through libphonenumber's find-in-text matcher run on the digit clusters
//! [`super::runs`] found, not over the whole text.

use rlibphonenumber::enums::Region;
use rlibphonenumber::phonenumber_matcher::{Leniency, PHONE_MATCHER_FACTORY};
use rlibphonenumber::PHONE_NUMBER_UTIL;

use super::{context, finding};
use crate::{Evidence, Finding, GuardError, Kind};

pub(super) struct Phones {
    /// Regions national numbers are read in; the first is tried first.
    regions: Vec<Region>,
}

impl Phones {
    pub(super) fn new(codes: &[String]) -> Result<Phones, GuardError> {
        let supported: Vec<Region> = PHONE_NUMBER_UTIL.get_supported_regions().collect();
        let mut regions = Vec::with_capacity(codes.len());
        for code in codes {
            let region = Region::from_code(code.trim())
                .map_err(|e| GuardError::Setup(format!("phone region {code:?}: {e}")))?;
            if !supported.contains(&region) {
                return Err(GuardError::Setup(format!(
                    "phone region {code:?}: not a region with phone numbers"
                )));
            }
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
        Ok(Phones { regions })
    }

    /// The phone numbers in `text[start..end]`, a cluster of digits and separators.
    pub(super) fn find(&self, text: &str, start: usize, end: usize, out: &mut Vec<Finding>) {
        let Some(window) = text.get(start..end) else {
            return;
        };
        let builder = PHONE_MATCHER_FACTORY
            .matcher_builder(window)
            .leniency(Leniency::Valid);
        // The matcher sorts the regions it is given; seeding its most-recently-used slot
        // with the first configured region keeps that one tried first.
        let matcher = match self.regions.first() {
            Some(&first) => builder
                .regions_with_hint(self.regions.iter().copied(), first)
                .build(),
            None => builder.build(),
        };
        for m in matcher {
            let (s, e) = (start + m.start, start + m.end());
            // Written with a country code it is surely a phone number; as a bare run of
            // digits it may as well be any other number, until a word says otherwise.
            let base = if m.raw_string.starts_with('+') {
                0.85
            } else if m.raw_string.bytes().all(|c| c.is_ascii_digit()) {
                0.45
            } else {
                0.7
            };
            let score = context::score(text, s, base, context::PHONE, true);
            out.push(finding(Kind::Phone, s, e, score, Evidence::Pattern));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn unknown_regions_are_a_setup_error() {
        assert!(Phones::new(&regions(&["US", "GB", "DE"])).is_ok());
        assert!(Phones::new(&regions(&["XX"])).is_err());
        assert!(Phones::new(&regions(&["USA"])).is_err());
    }
}
