//! Pieces shared by the tests that run the real `switchyard` binary.

use std::io::{BufRead, BufReader};
use std::process::Child;

/// Reads the first line `switchyard serve` prints (started with piped stdout) and returns the
/// `http://…` address in it.
pub fn printed_address(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .unwrap();
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned()
}
