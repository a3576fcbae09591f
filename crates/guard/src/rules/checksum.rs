//! Check-digit algorithms. Digit slices hold values 0–9, not ASCII.

use sha2::{Digest, Sha256};

/// Luhn (payment cards).
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Verhoeff (Aadhaar).
pub(super) fn verhoeff(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, &d) in digits.iter().rev().enumerate() {
        c = D[usize::from(c)][usize::from(P[i % 8][usize::from(d % 10)])];
    }
    c == 0
}

/// ISO 7064 MOD 11,10 over all but the last digit, which must be the check digit (German
/// Steuer-ID).
pub(super) fn iso7064_mod11_10(digits: &[u8]) -> bool {
    let Some((&check, body)) = digits.split_last() else {
        return false;
    };
    let mut product = 10u32;
    for &d in body {
        let mut sum = (u32::from(d) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let expected = (11 - product) % 10;
    expected == u32::from(check)
}

/// The value of a run of digits (at most 19, so it fits).
pub(super) fn number(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0u64, |n, &d| n.wrapping_mul(10).wrapping_add(u64::from(d)))
}

/// Base58Check of a Bitcoin P2PKH/P2SH address: 25 bytes, version 0x00 or 0x05, and the
/// first four bytes of the double SHA-256 of the rest at the end.
pub(super) fn base58check_address(s: &[u8]) -> bool {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out = [0u8; 25];
    for &c in s {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            return false;
        };
        let mut carry = v as u32;
        for byte in out.iter_mut().rev() {
            let x = u32::from(*byte) * 58 + carry;
            *byte = (x & 0xff) as u8;
            carry = x >> 8;
        }
        if carry != 0 {
            return false;
        }
    }
    // Each leading '1' is a leading zero byte, and the value must need exactly those.
    let ones = s.iter().take_while(|&&c| c == b'1').count();
    let zeros = out.iter().take_while(|&&b| b == 0).count();
    if ones != zeros.min(25) || !matches!(out[0], 0x00 | 0x05) {
        return false;
    }
    let first = Sha256::digest(&out[..21]);
    let second = Sha256::digest(first);
    second[..4] == out[21..]
}

/// Bech32's 32 data characters, in value order.
pub(crate) const BECH32_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Bech32's checksum polymod over 5-bit values (BIP 173): 1 for a valid bech32 string,
/// 0x2bc830a3 for bech32m.
pub(crate) fn bech32_polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    values.iter().fold(1u32, |chk, &v| {
        let top = chk >> 25;
        let mut chk = ((chk & 0x1ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
        chk
    })
}

/// A segwit address (BIP 173 bech32 for version 0, BIP 350 bech32m after), lower or upper
/// case, human-readable part "bc" or "tb".
pub(super) fn segwit_address(s: &[u8]) -> bool {
    let lower = s.iter().all(|c| !c.is_ascii_uppercase());
    let upper = s.iter().all(|c| !c.is_ascii_lowercase());
    if !(lower || upper) || !(14..=90).contains(&s.len()) {
        return false;
    }
    let s: Vec<u8> = s.iter().map(u8::to_ascii_lowercase).collect();
    let Some(sep) = s.iter().rposition(|&c| c == b'1') else {
        return false;
    };
    let (hrp, data) = (&s[..sep], &s[sep + 1..]);
    if !matches!(hrp, b"bc" | b"tb") || data.len() < 7 {
        return false;
    }
    let mut values = Vec::with_capacity(hrp.len() * 2 + 1 + data.len());
    values.extend(hrp.iter().map(|c| c >> 5));
    values.push(0);
    values.extend(hrp.iter().map(|c| c & 31));
    for &c in data {
        let Some(v) = BECH32_CHARSET.iter().position(|&x| x == c) else {
            return false;
        };
        values.push(v as u8);
    }
    let chk = bech32_polymod(&values);
    let version = values[hrp.len() * 2 + 1];
    let program_bytes = (data.len() - 7) * 5 / 8;
    match version {
        0 => chk == 1 && matches!(program_bytes, 20 | 32),
        1..=16 => chk == 0x2bc8_30a3 && (2..=40).contains(&program_bytes),
        _ => false,
    }
}

/// Shannon entropy of `s`, in bits per byte.
pub(super) fn entropy(s: &[u8]) -> f32 {
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect()
    }

    #[test]
    fn luhn_accepts_the_stripe_test_card_and_rejects_a_changed_digit() {
        assert!(luhn(&digits("4242424242424242")));
        assert!(!luhn(&digits("4242424242424241")));
    }

    #[test]
    fn verhoeff_accepts_its_textbook_example() {
        assert!(verhoeff(&digits("2363")));
        assert!(!verhoeff(&digits("2364")));
    }

    #[test]
    fn iso7064_accepts_a_published_steuer_id() {
        assert!(iso7064_mod11_10(&digits("36574261809")));
        assert!(!iso7064_mod11_10(&digits("36574261808")));
    }

    #[test]
    fn base58check_accepts_real_addresses_and_rejects_a_changed_character() {
        assert!(base58check_address(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"));
        assert!(base58check_address(b"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
        assert!(!base58check_address(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"));
        assert!(!base58check_address(b"1A1zP1eP5QGefi2DMPTfTL0SLmv7DivfNa"));
    }

    #[test]
    fn segwit_accepts_the_bip_examples() {
        assert!(segwit_address(
            b"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        ));
        assert!(segwit_address(
            b"BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"
        ));
        assert!(segwit_address(
            b"bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
        ));
        assert!(!segwit_address(
            b"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"
        ));
        assert!(!segwit_address(
            b"bc1qw508d6qejxtdg4y5r3zarvaRy0c5xw7kv8f3t4"
        ));
    }

    #[test]
    fn entropy_of_a_random_token_is_high_and_of_a_word_low() {
        assert!(entropy(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") > 4.0);
        assert!(entropy(b"aaaaaaaaaaaaaaaa") < 0.1);
    }
}
