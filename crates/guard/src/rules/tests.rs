//! The rules as a whole: what each detector finds in running text, with its exact span, and
//! what it leaves alone.

use super::Rules;
use crate::{Evidence, Finding, Kind};

fn rules() -> Rules {
    Rules::new(&["US".to_string(), "GB".to_string()]).expect("rules build")
}

/// The findings the detector would keep (score at least 0.5).
fn kept(text: &str) -> Vec<Finding> {
    rules()
        .find(text)
        .into_iter()
        .filter(|f| f.score >= 0.5)
        .collect()
}

/// The kept findings of `kind`, as the text they cover.
fn found(text: &str, kind: Kind) -> Vec<String> {
    kept(text)
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| text[f.start..f.end].to_string())
        .collect()
}

/// The best score of a finding of `kind` covering exactly `value` in `text`.
fn score(text: &str, kind: Kind, value: &str) -> f32 {
    let start = text.find(value).expect("value in text");
    rules()
        .find(text)
        .into_iter()
        .filter(|f| f.kind == kind && f.start == start && f.end == start + value.len())
        .map(|f| f.score)
        .fold(0.0, f32::max)
}

fn evidence(text: &str, kind: Kind) -> Vec<Evidence> {
    kept(text)
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.evidence)
        .collect()
}

#[test]
fn findings_are_sorted_by_start_and_on_char_boundaries() {
    let text = "Ünïcödé — mail jöhn@example.com, card 4242 4242 4242 4242, IP 10.0.0.1 ✓";
    let f = rules().find(text);
    assert!(f.windows(2).all(|w| w[0].start <= w[1].start));
    assert!(f
        .iter()
        .all(|f| text.is_char_boundary(f.start) && text.is_char_boundary(f.end)));
    assert!(f.iter().all(|f| (0.0..=1.0).contains(&f.score)));
}

#[test]
fn an_email_is_found_with_its_exact_span() {
    assert_eq!(
        found("write to jane.doe+x@example.co.uk.", Kind::Email),
        ["jane.doe+x@example.co.uk"]
    );
    assert_eq!(found("mailto:bob@corp.io", Kind::Email), ["bob@corp.io"]);
    assert!(found("ping @jane on slack", Kind::Email).is_empty());
    assert!(found("user@localhost", Kind::Email).is_empty());
}

#[test]
fn phones_are_found_in_international_and_national_formats() {
    assert_eq!(
        found("Call me at +1 650-253-0000 tomorrow", Kind::Phone),
        ["+1 650-253-0000"]
    );
    assert_eq!(
        found("Call me at (650) 253-0000 tomorrow", Kind::Phone),
        ["(650) 253-0000"]
    );
    assert_eq!(
        found("London office: 020 7946 0958.", Kind::Phone),
        ["020 7946 0958"]
    );
    assert_eq!(
        found("Berlin: +49 30 901820", Kind::Phone),
        ["+49 30 901820"]
    );
}

#[test]
fn national_phones_are_read_only_in_the_configured_regions() {
    let text = "Paris: 01 42 68 53 00";
    assert!(found(text, Kind::Phone).is_empty());
    let fr = Rules::new(&["FR".to_string()]).expect("rules build");
    let f: Vec<_> = fr
        .find(text)
        .into_iter()
        .filter(|f| f.kind == Kind::Phone)
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(&text[f[0].start..f[0].end], "01 42 68 53 00");
}

#[test]
fn a_bare_run_of_digits_is_a_phone_number_only_with_a_phone_word() {
    assert!(found("values 536870923, 1073741827, 2147483659", Kind::Phone).is_empty());
    assert_eq!(found("call me on 6502530000", Kind::Phone), ["6502530000"]);
}

#[test]
fn phone_context_words_raise_and_order_words_lower() {
    let plain = score("number 650-253-0000", Kind::Phone, "650-253-0000");
    let phone = score("phone 650-253-0000", Kind::Phone, "650-253-0000");
    let order = score("order 650-253-0000", Kind::Phone, "650-253-0000");
    assert!(phone > plain && plain > order, "{phone} {plain} {order}");
    assert!(order < 0.5);
}

#[test]
fn cards_of_each_network_pass_luhn_with_any_separators() {
    for card in [
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        "4242424242424242",
        "5555 5555 5555 4444",
        "2223 0031 2200 3222",
        "3782 822463 10005",
        "6011 1111 1111 1117",
        "3056 9309 0259 04",
        "3566 0020 2036 0505",
        "6200 0000 0000 0005",
    ] {
        let text = format!("card: {card}, exp 12/29");
        assert_eq!(found(&text, Kind::CreditCard), [card], "{card}");
        assert_eq!(evidence(&text, Kind::CreditCard), [Evidence::Checksum]);
    }
}

#[test]
fn a_word_after_a_dash_labels_the_number_but_hex_after_it_makes_an_identifier() {
    let text = "+1 202 685 2589-Office,020 7096 1711-Fax";
    assert_eq!(
        found(text, Kind::Phone),
        ["+1 202 685 2589", "020 7096 1711"]
    );
    assert!(found(
        "id 202-685-2589-abcd-1234 and 202 685 2589-d27",
        Kind::Phone
    )
    .is_empty());
}

#[test]
fn a_number_after_a_plus_is_a_phone_number_not_a_card() {
    // 4915187689802 passes Luhn and starts like a 13-digit Visa.
    let text = "Tel. +49 151 87689802 / Fax 07151 895352";
    assert!(found(text, Kind::CreditCard).is_empty());
    assert_eq!(found(text, Kind::Phone)[0], "+49 151 87689802");
    assert_eq!(
        found("card 4915187689802", Kind::CreditCard),
        ["4915187689802"]
    );
}

#[test]
fn a_card_with_a_bad_checksum_or_no_issuer_is_not_a_card() {
    assert!(found("card 4242 4242 4242 4241", Kind::CreditCard).is_empty());
    assert!(found("card 9242 4242 4242 4242", Kind::CreditCard).is_empty());
}

#[test]
fn a_grouped_card_scores_high_and_an_order_number_shaped_like_one_low() {
    assert!(
        score(
            "4242 4242 4242 4242",
            Kind::CreditCard,
            "4242 4242 4242 4242"
        ) >= 0.9
    );
    assert!(
        score(
            "order 4242424242424242",
            Kind::CreditCard,
            "4242424242424242"
        ) < 0.5
    );
}

#[test]
fn an_iban_is_found_grouped_or_compact_and_rejected_with_a_bad_checksum() {
    assert_eq!(
        found("IBAN GB82 WEST 1234 5698 7654 32 please", Kind::Iban),
        ["GB82 WEST 1234 5698 7654 32"]
    );
    assert_eq!(
        found("to DE89370400440532013000.", Kind::Iban),
        ["DE89370400440532013000"]
    );
    assert!(found("IBAN GB82 WEST 1234 5698 7654 33", Kind::Iban).is_empty());
    assert_eq!(
        evidence("GB82WEST12345698765432", Kind::Iban),
        [Evidence::Checksum]
    );
}

#[test]
fn a_dashed_ssn_scores_high_and_a_bare_one_needs_context() {
    assert_eq!(found("SSN 123-45-6789.", Kind::UsSsn), ["123-45-6789"]);
    assert_eq!(found("it is 123 45 6789", Kind::UsSsn), ["123 45 6789"]);
    assert!(found("number 123456789", Kind::UsSsn).is_empty());
    assert_eq!(found("my ssn: 123456789", Kind::UsSsn), ["123456789"]);
}

#[test]
fn ssns_in_never_issued_ranges_are_rejected() {
    for bad in [
        "000-12-3456",
        "666-12-3456",
        "123-00-4567",
        "123-45-0000",
        "123-45-6789-1",
    ] {
        assert!(
            found(&format!("ssn {bad}"), Kind::UsSsn).is_empty(),
            "{bad}"
        );
    }
}

#[test]
fn an_itin_is_a_tax_id_and_an_ein_needs_its_context() {
    assert_eq!(found("ITIN 912-70-1234", Kind::TaxId), ["912-70-1234"]);
    assert!(found("ITIN 912-40-1234", Kind::TaxId).is_empty());
    assert_eq!(found("our EIN is 12-3456789", Kind::TaxId), ["12-3456789"]);
    assert!(found("call 12-3456789", Kind::TaxId).is_empty());
    assert!(found("EIN 07-3456789", Kind::TaxId).is_empty());
}

#[test]
fn ip_addresses_are_parsed_and_versions_are_not_addresses() {
    assert_eq!(
        found("from 192.168.0.1:8080", Kind::IpAddress),
        ["192.168.0.1"]
    );
    assert_eq!(
        found("host 2001:db8::8a2e:370:7334 down", Kind::IpAddress),
        ["2001:db8::8a2e:370:7334"]
    );
    assert_eq!(
        found("link fe80::1ff:fe23:4567:890a.", Kind::IpAddress),
        ["fe80::1ff:fe23:4567:890a"]
    );
    assert!(found("from 256.1.1.1", Kind::IpAddress).is_empty());
    assert!(found("version 1.2.3.4 is out", Kind::IpAddress).is_empty());
    assert!(found("v1.2.3.4 and 10.0.2 and 1.2.3.4.5", Kind::IpAddress).is_empty());
    assert!(found("at 12:30:45 and std::vec::Vec", Kind::IpAddress).is_empty());
    assert!(found("f64::from(x) and a::b::c", Kind::IpAddress).is_empty());
    assert!(found("RFC 9110 Section 5.6.1.2 says", Kind::IpAddress).is_empty());
    assert!(found("listen on 127.0.0.1 or 0.0.0.0 or ::1", Kind::IpAddress).is_empty());
}

#[test]
fn mac_addresses_in_their_three_notations() {
    for mac in ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e"] {
        assert_eq!(found(&format!("mac {mac} here"), Kind::MacAddress), [mac]);
    }
    assert!(found("00:1A:2B:3C:4D", Kind::MacAddress).is_empty());
}

#[test]
fn a_dotted_mac_may_start_with_four_digits_but_twelve_digits_are_no_mac() {
    for mac in ["1111.39ce.b0fc", "7182.001a.fccb", "9782.c1da.1107"] {
        assert_eq!(found(&format!("mac {mac}."), Kind::MacAddress), [mac]);
    }
    assert!(found("build 2024.0511.1234 passed", Kind::MacAddress).is_empty());
    assert!(found("on 2024.05.11 at noon", Kind::MacAddress).is_empty());
}

#[test]
fn a_url_with_a_password_is_found_whole_and_not_as_an_email() {
    let text = "db at postgres://admin:s3cr3t@db.example.com:5432/app now";
    assert_eq!(
        found(text, Kind::UrlCredentials),
        ["postgres://admin:s3cr3t@db.example.com:5432"]
    );
    assert!(found(text, Kind::Email).is_empty());
    assert!(found("see https://example.com/a@b", Kind::UrlCredentials).is_empty());
    assert!(found("see https://user@example.com/", Kind::UrlCredentials).is_empty());
}

#[test]
fn a_date_is_a_date_of_birth_only_after_a_birth_word() {
    for (text, date) in [
        ("DOB: 03/12/1985.", "03/12/1985"),
        ("born on 12 March 1990 in Leeds", "12 March 1990"),
        ("Date of birth: 1990-03-12", "1990-03-12"),
        ("birthday: March 12th, 1990", "March 12th, 1990"),
        ("geboren am 12.03.1990", "12.03.1990"),
        ("née le 5 juillet 1972", "5 juillet 1972"),
        (
            "fecha de nacimiento: 12 de marzo de 1990",
            "12 de marzo de 1990",
        ),
    ] {
        assert_eq!(found(text, Kind::DateOfBirth), [date], "{text}");
    }
    assert!(found("meeting on 03/12/1985", Kind::DateOfBirth).is_empty());
    assert!(found("stubborn 03/12/1985", Kind::DateOfBirth).is_empty());
    assert!(found("born 45/13/1985", Kind::DateOfBirth).is_empty());
}

#[test]
fn passports_and_licences_need_their_word() {
    assert_eq!(
        found("passport no. 123456789", Kind::Passport),
        ["123456789"]
    );
    assert_eq!(
        found("US passport: C03005988", Kind::Passport),
        ["C03005988"]
    );
    assert_eq!(found("Passeport 12AB34567", Kind::Passport), ["12AB34567"]);
    assert_eq!(found("Reisepass C01X00T47", Kind::Passport), ["C01X00T47"]);
    assert_eq!(found("passport A1234567", Kind::Passport), ["A1234567"]);
    assert!(found("passport expires 2030-01-01", Kind::Passport).is_empty());
    assert!(found("C03005988", Kind::Passport).is_empty());
    assert_eq!(
        found("driver's license D123-4567-8901", Kind::DriversLicense),
        ["D123-4567-8901"]
    );
    assert_eq!(
        found("DL: MORGA753116SM9IJ", Kind::DriversLicense),
        ["MORGA753116SM9IJ"]
    );
    assert!(found("MIT License 2024", Kind::DriversLicense).is_empty());
    assert!(found("middle 12345678", Kind::DriversLicense).is_empty());
}

#[test]
fn national_ids_with_their_checks() {
    assert_eq!(
        found("NINO AB 12 34 56 C.", Kind::NationalId),
        ["AB 12 34 56 C"]
    );
    assert_eq!(found("NI: AB123456C", Kind::NationalId), ["AB123456C"]);
    assert!(found("ref QQ123456C", Kind::NationalId).is_empty());
    assert_eq!(found("DNI 12345678Z", Kind::NationalId), ["12345678Z"]);
    assert_eq!(found("DNI 12345678-Z", Kind::NationalId), ["12345678-Z"]);
    assert!(found("DNI 12345678-A", Kind::NationalId).is_empty());
    assert_eq!(found("NIE X1234567L", Kind::NationalId), ["X1234567L"]);
    assert_eq!(
        found("CF RSSMRA85T10A562S", Kind::NationalId),
        ["RSSMRA85T10A562S"]
    );
    assert!(found("CF RSSMRA85T10A562T", Kind::NationalId).is_empty());
    assert_eq!(
        found("NIR 2 55 08 14 168 025 38", Kind::NationalId),
        ["2 55 08 14 168 025 38"]
    );
    assert!(found("NIR 2 55 08 14 168 025 39", Kind::NationalId).is_empty());
    assert_eq!(
        found("Aadhaar 2345 6789 0124", Kind::NationalId),
        ["2345 6789 0124"]
    );
    assert!(found("Aadhaar 2345 6789 0125", Kind::NationalId).is_empty());
    assert!(found("Aadhaar 1345 6789 0124", Kind::NationalId).is_empty());
}

#[test]
fn a_bare_aadhaar_needs_its_word() {
    assert!(found("number 234567890124", Kind::NationalId).is_empty());
    assert_eq!(
        found("aadhaar 234567890124", Kind::NationalId),
        ["234567890124"]
    );
}

#[test]
fn tax_ids_with_their_checks() {
    assert_eq!(found("Steuer-ID 36574261809", Kind::TaxId), ["36574261809"]);
    assert_eq!(
        found("IdNr 36 574 261 809", Kind::TaxId),
        ["36 574 261 809"]
    );
    assert!(found("Steuer-ID 36574261808", Kind::TaxId).is_empty());
    assert!(found("36574261809", Kind::TaxId).is_empty());
    assert_eq!(found("PAN ABCPE1234F", Kind::TaxId), ["ABCPE1234F"]);
}

#[test]
fn crypto_wallets_with_real_checksums() {
    for w in [
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
        "0x52908400098527886E0F7030069857D2E4169EE7",
    ] {
        assert_eq!(found(&format!("send to {w}."), Kind::CryptoWallet), [w]);
    }
    assert!(found("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", Kind::CryptoWallet).is_empty());
    assert!(found(
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
        Kind::CryptoWallet
    )
    .is_empty());
}

#[test]
fn provider_keys_are_secrets() {
    for key in [
        "AKIAIOSFODNN7EXAMPLE",
        "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
        "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",
        "glpat-xxxxxxxxxxxxxxxxxxxx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN",
        "sk-ant-api03-iK2ZWeqhFWCEPyYngFb51yBMWXaSCrUZoL8g5ubbbPIa84yRnBUbHoWC8FJowoRoWD8s7bA16J7PglOU3shVv5UTG79BGAA",
        "SK0123456789abcdef0123456789abcdef",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    ] {
        let text = format!("use {key} here");
        assert_eq!(found(&text, Kind::Secret), [key], "{key}");
    }
    assert!(found("the AKIA prefix and task-sk-1", Kind::Secret).is_empty());
}

#[test]
fn a_slack_webhook_and_an_azure_connection_string_are_secrets() {
    let hook = "hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
    assert_eq!(
        found(&format!("post to https://{hook} ok"), Kind::Secret),
        [hook]
    );
    let key = format!("AccountKey={}==", "a".repeat(86));
    let conn = format!(
        "DefaultEndpointsProtocol=https;AccountName=x;{key};EndpointSuffix=core.windows.net"
    );
    assert_eq!(found(&conn, Kind::Secret), [key]);
}

#[test]
fn a_jwt_needs_a_json_header_with_alg() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    assert_eq!(
        found(&format!("Authorization: Bearer {jwt}"), Kind::Secret),
        [jwt]
    );
    assert!(found("eyJub3QiOiJhIGp3dCJ9.eyJ4IjoxfQ.abc", Kind::Secret).is_empty());
}

#[test]
fn a_pem_private_key_is_found_from_begin_through_end() {
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----";
    let text = format!("key:\n{pem}\nthanks");
    assert_eq!(found(&text, Kind::Secret), [pem]);
    let json = r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"}"#;
    let f = found(json, Kind::Secret);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].starts_with("-----BEGIN PRIVATE KEY-----")
            && f[0].ends_with("-----END PRIVATE KEY-----")
    );
    assert!(found(
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        Kind::Secret
    )
    .is_empty());
}

#[test]
fn passwords_and_high_entropy_values_assigned_to_secret_words() {
    assert_eq!(found("password=hunter2!", Kind::Secret), ["hunter2!"]);
    assert_eq!(
        found(r#"{"password": "correct horse"}"#, Kind::Secret),
        ["correct horse"]
    );
    assert_eq!(
        found(
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            Kind::Secret
        ),
        ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]
    );
    assert_eq!(
        found(
            r#""token": "d8e8fca2dc0f896fd7cb4cb0031ba249""#,
            Kind::Secret
        ),
        ["d8e8fca2dc0f896fd7cb4cb0031ba249"]
    );
    assert_eq!(
        found(
            "DISCORD_TOKEN=MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
            Kind::Secret
        ),
        ["MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"]
    );
    assert_eq!(
        found("my api key is Zx81kQpL0vR7tYb2WmN4", Kind::Secret),
        ["Zx81kQpL0vR7tYb2WmN4"]
    );
}

#[test]
fn placeholders_words_and_low_entropy_values_are_not_secrets() {
    for text in [
        "password = ${DB_PASSWORD}",
        "password: ********",
        "password = getpass()",
        "token: abc",
        "the keyboard is 1234567890123456",
        "max_tokens: 4096",
        "api_key = aaaaaaaaaaaaaaaa1",
        "secret_name = my_variable_name_here",
        "probe.key = RISCV_HWPROBE_KEY_IMA_EXT_0;",
        "key = String::from_utf8_lossy(&bytes)",
        "password = std::string(argv[1])",
    ] {
        assert!(found(text, Kind::Secret).is_empty(), "{text}");
    }
}

#[test]
fn a_uuid_or_a_commit_sha_alone_is_not_a_secret() {
    assert!(kept("request 123e4567-e89b-12d3-a456-426614174000 failed").is_empty());
    assert!(found(
        "api_key: 123e4567-e89b-12d3-a456-426614174000",
        Kind::Secret
    )
    .is_empty());
    assert!(kept("fixed in commit 3f786850e387550fdab836ed7d6dc881de23001b").is_empty());
}

#[test]
fn everyday_numbers_are_not_personal_data() {
    for text in [
        "Order #123456789 shipped",
        "Invoice 2024-0042 due",
        "tracking number 1Z999AA10123456784",
        "released v1.2.3 and 10.0.2 on 2024-05-01T12:00:00Z",
        "costs $1,234.56 or €99.99",
        "ISBN 978-3-16-148410-0",
        "in 1999, 2004 and 2024",
        "see https://example.com/users/123456789/posts",
        "a 16-bit value, 3.14159, 1e10",
        "at 2024-05-01 12:00:00",
    ] {
        assert!(kept(text).is_empty(), "{text}: {:?}", kept(text));
    }
}

#[test]
fn unknown_phone_regions_fail_setup() {
    assert!(Rules::new(&["ZZ".to_string()]).is_err());
    assert!(Rules::new(&[]).is_ok());
}
