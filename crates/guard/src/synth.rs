//! A labelled synthetic set for evaluating the [`crate::Detector`]: Presidio's sentence
//! templates (`presidio-evaluator==0.3.2`) with their slots filled from its 3,000 fake
//! identities and organisation names, templates of our own for the types Presidio's lack (MAC
//! addresses, UK NINOs, wallets, secrets, URLs with credentials, international phones, …), and
//! negative sentences whose order numbers, versions, timestamps, UUIDs, prices and tracking
//! numbers must not be found.
//!
//! Labelling: names are PERSON (without a title such as "Mr."); a street address is one
//! ADDRESS span, from the first to the last of its adjacent parts (number, street, flat, city,
//! state, postcode, country); a city, country, state or postcode standing alone is filled but
//! not labelled (it names a place, not a person's address), and neither are ages, years, days,
//! jobs, nationalities, plain URLs or event dates ({{date_time}}).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rules::checksum::{self, bech32_polymod, BECH32_CHARSET};
use crate::{GuardError, Kind};

/// Presidio's templates, one a line, slots written `{{name}}`.
pub const TEMPLATES: &str = "templates.txt";
/// FakeNameGenerator's 3,000 identities.
pub const IDENTITIES: &str = "FakeNameGenerator.com_3000.csv";
/// Company and organisation names, one column.
pub const ORGANIZATIONS: &str = "companies_and_organizations.csv";
/// Where `scripts/fetch-models.sh` puts the three, under the models folder.
pub const DIR: &str = "data/presidio";

/// One labelled value: byte offsets into [`Sample::text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// A text and the personal data in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub text: String,
    pub spans: Vec<Span>,
    /// For a negative sentence, what it holds that must not be found (`order_number`,
    /// `version`, `timestamp`, `uuid`, `price`, `tracking_number`); it has no spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<String>,
}

/// Our templates for what Presidio's lack or have few of.
const OWN: &[&str] = &[
    "Call me on {{phone_number}} after six.",
    "My mobile is {{phone_number}}, text me if I don't pick up.",
    "You can reach our office at {{phone_number}} between 9 and 5.",
    "Phone: {{phone_number}}",
    "{{person}} ({{phone_number}}) asked for a callback.",
    "New number: {{phone_number}}. The old one is gone.",
    "Tel. {{phone_number}} / Fax {{phone_number}}",
    "Ring {{first_name}} at {{phone_number}} about the delivery.",
    "Charge it to {{credit_card_number}}, expiry 04/27.",
    "card: {{credit_card_number}}",
    "I paid with {{credit_card_number}} but the order failed.",
    "Please refund the card ending in that number: {{credit_card_number}}",
    "{{person}}'s company card is {{credit_card_number}}.",
    "Use {{credit_card_number}} for the hotel deposit.",
    "Wire the money to {{iban}} by Friday.",
    "IBAN: {{iban}}",
    "Our account is {{iban}}, reference invoice 2024-17.",
    "Beneficiary {{person}}, account {{iban}}",
    "Please update my payout account to {{iban}}.",
    "Email me at {{email}} with the details.",
    "Contact: {{email}}",
    "{{person}} <{{email}}> wrote:",
    "cc {{email}} on the thread please",
    "My login is {{email}} and I forgot the password.",
    "SSN {{ssn}}",
    "My social security number is {{ssn}}.",
    "Applicant: {{person}}, SSN: {{ssn}}, DOB: {{date_of_birth}}",
    "The form asks for my SSN, it's {{ssn}}.",
    "Employee {{person}} (social security {{ssn}}) starts Monday.",
    "Login attempt from {{ip_address}} was blocked.",
    "The server at {{ip_address}} stopped answering.",
    "Whitelist {{ip_address}} on the firewall.",
    "client={{ip_address}} status=403",
    "My home IP is {{ip_address}}, can you unblock it?",
    "Connection from {{ipv6}} refused",
    "The device's MAC address is {{mac_address}}.",
    "Add {{mac_address}} to the allowed devices.",
    "Interface eth0 has hardware address {{mac_address}}",
    "Date of birth: {{date_of_birth}}",
    "I was born on {{date_of_birth}} in {{city}}.",
    "DOB {{date_of_birth}}",
    "{{person}}, born {{date_of_birth}}, is the policy holder.",
    "My National Insurance number is {{nino}}.",
    "NI number: {{nino}}",
    "{{person}}, NINO {{nino}}, has applied for the allowance.",
    "Send the payment to my wallet {{crypto_wallet}}",
    "BTC address: {{crypto_wallet}}",
    "Tip me at {{crypto_wallet}} if you liked it.",
    "export AWS_ACCESS_KEY_ID={{aws_key}}",
    "Our access key {{aws_key}} leaked in the logs.",
    "token = \"{{github_token}}\"",
    "Use this GitHub token for the deploy: {{github_token}}",
    "STRIPE_SECRET_KEY={{stripe_key}}",
    "The bot token is {{slack_token}}, please rotate it.",
    "The database is at {{url_credentials}}",
    "git clone {{url_credentials}}",
    "DATABASE_URL={{url_credentials}}",
    "My driver's license is {{us_driver_license}}, issued in {{state_abbr}}.",
    "Ship it to {{address}}, attention {{person}}.",
    "{{person}}, {{organization}}, {{phone_number}}, {{email}}",
];

/// Negative templates: (category, template); nothing in them is personal data.
const NEGATIVE: &[(&str, &str)] = &[
    ("order_number", "Your order {{order_number}} has shipped."),
    (
        "order_number",
        "Order {{order_number}} was refunded on Tuesday.",
    ),
    ("order_number", "Reference: {{order_number}}"),
    (
        "version",
        "Please upgrade to version {{version}} before Friday.",
    ),
    (
        "version",
        "Running build {{version}} on the staging server.",
    ),
    ("version", "Fixed in {{version}}, see the changelog."),
    ("timestamp", "The job started at {{timestamp}} and failed."),
    ("timestamp", "Log entry {{timestamp}}: cache miss"),
    ("timestamp", "last_modified={{timestamp}}"),
    ("uuid", "Request id {{uuid}} timed out."),
    ("uuid", "The session {{uuid}} expired."),
    ("uuid", "trace_id: {{uuid}}"),
    ("price", "The total comes to {{price}} including tax."),
    ("price", "It costs {{price}} per month."),
    ("price", "Refund of {{price}} issued."),
    (
        "tracking_number",
        "Your parcel's tracking number is {{tracking_number}}.",
    ),
    ("tracking_number", "Track it with {{tracking_number}}"),
    (
        "tracking_number",
        "Shipment {{tracking_number}} is out for delivery.",
    ),
];

/// A template slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Person,
    FirstName,
    FirstNameMale,
    FirstNameFemale,
    NameMale,
    NameFemale,
    LastName,
    LastNameMale,
    LastNameFemale,
    Prefix,
    PrefixMale,
    PrefixFemale,
    Address,
    BuildingNumber,
    StreetName,
    SecondaryAddress,
    City,
    Country,
    Postcode,
    StateAbbr,
    Organization,
    Phone,
    CreditCard,
    Iban,
    Email,
    Ssn,
    IpAddress,
    Ipv6,
    MacAddress,
    DateOfBirth,
    DateTime,
    /// A `{{date_of_birth}}` with no birth word before it: a plain date.
    UnmarkedBirthDate,
    Url,
    UrlCredentials,
    DriversLicense,
    Nino,
    CryptoWallet,
    AwsKey,
    GithubToken,
    StripeKey,
    SlackToken,
    Age,
    Year,
    DayOfWeek,
    Job,
    Nationality,
    NationPlural,
    OrderNumber,
    Version,
    Timestamp,
    Uuid,
    Price,
    TrackingNumber,
}

impl Slot {
    fn from_name(name: &str) -> Option<Slot> {
        Some(match name {
            "name" | "person" => Slot::Person,
            "first_name" | "first_name_nonbinary" => Slot::FirstName,
            "first_name_male" => Slot::FirstNameMale,
            "first_name_female" => Slot::FirstNameFemale,
            "name_male" => Slot::NameMale,
            "name_female" => Slot::NameFemale,
            "last_name" => Slot::LastName,
            "last_name_male" => Slot::LastNameMale,
            "last_name_female" => Slot::LastNameFemale,
            "prefix" => Slot::Prefix,
            "prefix_male" => Slot::PrefixMale,
            "prefix_female" => Slot::PrefixFemale,
            "address" => Slot::Address,
            "building_number" => Slot::BuildingNumber,
            "street_name" => Slot::StreetName,
            "secondary_address" => Slot::SecondaryAddress,
            "city" => Slot::City,
            "country" => Slot::Country,
            "postcode" | "zipcode" => Slot::Postcode,
            "state_abbr" => Slot::StateAbbr,
            "organization" => Slot::Organization,
            "phone_number" => Slot::Phone,
            "credit_card_number" => Slot::CreditCard,
            "iban" => Slot::Iban,
            "email" => Slot::Email,
            "ssn" => Slot::Ssn,
            "ip_address" => Slot::IpAddress,
            "ipv6" => Slot::Ipv6,
            "mac_address" => Slot::MacAddress,
            "date_of_birth" => Slot::DateOfBirth,
            "date_time" => Slot::DateTime,
            "url" => Slot::Url,
            "url_credentials" => Slot::UrlCredentials,
            "us_driver_license" => Slot::DriversLicense,
            "nino" => Slot::Nino,
            "crypto_wallet" => Slot::CryptoWallet,
            "aws_key" => Slot::AwsKey,
            "github_token" => Slot::GithubToken,
            "stripe_key" => Slot::StripeKey,
            "slack_token" => Slot::SlackToken,
            "age" => Slot::Age,
            "year" => Slot::Year,
            "day_of_week" => Slot::DayOfWeek,
            "job" => Slot::Job,
            "nationality" | "nation_woman" => Slot::Nationality,
            "nation_plural" => Slot::NationPlural,
            "order_number" => Slot::OrderNumber,
            "version" => Slot::Version,
            "timestamp" => Slot::Timestamp,
            "uuid" => Slot::Uuid,
            "price" => Slot::Price,
            "tracking_number" => Slot::TrackingNumber,
            _ => return None,
        })
    }
}

/// What a filled slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    None,
    Kind(Kind),
    /// A part of a street address; adjacent parts holding a number and a street are one span.
    Part(Part),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Number,
    Street,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Slot),
}

#[derive(Debug, Clone)]
struct Template {
    pieces: Vec<Piece>,
    negative: Option<&'static str>,
}

impl Template {
    /// Parses `{{slot}}`s; Presidio's file writes line breaks as `\n` and one comma as `\,`.
    fn parse(line: &str, negative: Option<&'static str>) -> Result<Template, GuardError> {
        let line = line.replace("\\n", "\n").replace("\\,", ",");
        let mut pieces = Vec::new();
        let mut rest = line.as_str();
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open..].find("}}").map(|c| open + c) else {
                break;
            };
            let name = &rest[open + 2..close];
            let mut slot = Slot::from_name(name).ok_or_else(|| {
                GuardError::Setup(format!("template slot {{{{{name}}}}} is unknown: {line}"))
            })?;
            // A date is a date of birth only when the text before it says so ("It's like that
            // since {{date_of_birth}}" holds a plain date).
            let before = line[..line.len() - rest.len() + open].to_lowercase();
            if slot == Slot::DateOfBirth
                && !["born", "birth", "dob", "d.o.b", "naissance"]
                    .iter()
                    .any(|w| before.contains(w))
            {
                slot = Slot::UnmarkedBirthDate;
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            pieces.push(Piece::Slot(slot));
            rest = &rest[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces, negative })
    }
}

/// One fake person.
#[derive(Debug, Clone)]
struct Identity {
    male: bool,
    title: String,
    given: String,
    middle: String,
    surname: String,
    street: String,
    city: String,
    state: String,
    zip: String,
    country_code: String,
    country: String,
    email: String,
    username: String,
    password: String,
    /// (month, day, year)
    birthday: (u32, u32, u32),
    occupation: String,
    domain: String,
}

/// The raw data, loaded once; [`Corpus::samples`] draws sets from it.
#[derive(Debug, Clone)]
pub struct Corpus {
    presidio: Vec<Template>,
    own: Vec<Template>,
    negative: Vec<Template>,
    identities: Vec<Identity>,
    males: Vec<usize>,
    females: Vec<usize>,
    us: Vec<usize>,
    streets: Vec<String>,
    organizations: Vec<String>,
}

impl Corpus {
    /// Reads the three raw files from `dir` (the models folder's `data/presidio/`).
    pub fn load(dir: &Path) -> Result<Corpus, GuardError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| {
                GuardError::Setup(format!(
                    "{} is missing or unreadable ({e}): run scripts/fetch-models.sh --data",
                    path.display()
                ))
            })
        };
        Corpus::parse(&read(TEMPLATES)?, &read(IDENTITIES)?, &read(ORGANIZATIONS)?)
    }

    /// Builds a corpus from the three files' contents.
    pub fn parse(
        templates: &str,
        identities: &str,
        organizations: &str,
    ) -> Result<Corpus, GuardError> {
        let presidio = templates
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .map(|l| Template::parse(l, None))
            .collect::<Result<Vec<_>, _>>()?;
        let own = OWN
            .iter()
            .map(|l| Template::parse(l, None))
            .collect::<Result<Vec<_>, _>>()?;
        let negative = NEGATIVE
            .iter()
            .map(|(c, l)| Template::parse(l, Some(c)))
            .collect::<Result<Vec<_>, _>>()?;
        let identities = parse_identities(identities)?;
        let organizations: Vec<String> = parse_csv(organizations)
            .into_iter()
            .skip(1)
            .filter_map(|row| row.into_iter().next())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if presidio.is_empty() || identities.is_empty() || organizations.is_empty() {
            return Err(GuardError::Setup(
                "the eval data has no templates, identities or organisations: run scripts/fetch-models.sh --data".into(),
            ));
        }
        let which = |f: &dyn Fn(&Identity) -> bool| -> Vec<usize> {
            let v: Vec<usize> = (0..identities.len())
                .filter(|&i| f(&identities[i]))
                .collect();
            if v.is_empty() {
                (0..identities.len()).collect()
            } else {
                v
            }
        };
        let males = which(&|p| p.male);
        let females = which(&|p| !p.male);
        let us = which(&|p| p.country_code == "US");
        let mut streets: Vec<String> = identities
            .iter()
            .filter(|p| !p.street.contains("Box"))
            .map(|p| {
                p.street
                    .split_whitespace()
                    .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|s| s.chars().any(char::is_alphabetic))
            .collect();
        if streets.is_empty() {
            streets.push("Main Street".into());
        }
        Ok(Corpus {
            presidio,
            own,
            negative,
            identities,
            males,
            females,
            us,
            streets,
            organizations,
        })
    }

    /// `n` samples, the same for the same seed: 45% from Presidio's templates, 40% from ours,
    /// 15% negatives.
    pub fn samples(&self, n: usize, seed: u64) -> Vec<Sample> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let roll = rng.below(100);
                let pool = if roll < 45 {
                    &self.presidio
                } else if roll < 85 {
                    &self.own
                } else {
                    &self.negative
                };
                let template = &pool[rng.below(pool.len())];
                self.render(template, &mut rng)
            })
            .collect()
    }

    fn render(&self, template: &Template, rng: &mut Rng) -> Sample {
        let mut text = String::new();
        let mut filled: Vec<(usize, usize, Label)> = Vec::new();
        for piece in &template.pieces {
            match piece {
                Piece::Text(s) => text.push_str(s),
                Piece::Slot(slot) => {
                    let (value, label) = self.fill(*slot, rng);
                    let start = text.len();
                    text.push_str(&value);
                    filled.push((start, text.len(), label));
                }
            }
        }
        let spans = label_spans(&text, &filled);
        Sample {
            text,
            spans,
            negative: template.negative.map(str::to_string),
        }
    }

    fn person(&self, rng: &mut Rng) -> &Identity {
        &self.identities[rng.below(self.identities.len())]
    }

    fn from(&self, which: &[usize], rng: &mut Rng) -> &Identity {
        &self.identities[which[rng.below(which.len())]]
    }

    fn fill(&self, slot: Slot, rng: &mut Rng) -> (String, Label) {
        let person = Label::Kind(Kind::Person);
        match slot {
            Slot::Person => {
                let p = self.person(rng);
                let name = if rng.below(4) == 0 && !p.middle.is_empty() {
                    format!("{} {}. {}", p.given, p.middle, p.surname)
                } else {
                    format!("{} {}", p.given, p.surname)
                };
                (name, person)
            }
            Slot::FirstName => (self.person(rng).given.clone(), person),
            Slot::FirstNameMale => (self.from(&self.males, rng).given.clone(), person),
            Slot::FirstNameFemale => (self.from(&self.females, rng).given.clone(), person),
            Slot::NameMale => {
                let p = self.from(&self.males, rng);
                (format!("{} {}", p.given, p.surname), person)
            }
            Slot::NameFemale => {
                let p = self.from(&self.females, rng);
                (format!("{} {}", p.given, p.surname), person)
            }
            Slot::LastName => (self.person(rng).surname.clone(), person),
            Slot::LastNameMale => (self.from(&self.males, rng).surname.clone(), person),
            Slot::LastNameFemale => (self.from(&self.females, rng).surname.clone(), person),
            Slot::Prefix => (self.person(rng).title.clone(), Label::None),
            Slot::PrefixMale => (pick(rng, &["Mr.", "Dr.", "Mr"]).into(), Label::None),
            Slot::PrefixFemale => (
                pick(rng, &["Mrs.", "Ms.", "Dr.", "Miss"]).into(),
                Label::None,
            ),
            Slot::Address => (address(self.person(rng), rng), Label::Kind(Kind::Address)),
            Slot::BuildingNumber => ((1 + rng.below(2999)).to_string(), Label::Part(Part::Number)),
            Slot::StreetName => (
                self.streets[rng.below(self.streets.len())].clone(),
                Label::Part(Part::Street),
            ),
            Slot::SecondaryAddress => {
                let n = 1 + rng.below(400);
                let v = match rng.below(4) {
                    0 => format!("Apt. {n}"),
                    1 => format!("Suite {n}"),
                    2 => format!("Floor {}", 1 + n % 30),
                    _ => format!("Unit {n}B"),
                };
                (v, Label::Part(Part::Other))
            }
            Slot::City => (self.person(rng).city.clone(), Label::Part(Part::Other)),
            Slot::Country => (self.person(rng).country.clone(), Label::Part(Part::Other)),
            Slot::Postcode => (self.person(rng).zip.clone(), Label::Part(Part::Other)),
            Slot::StateAbbr => (
                self.from(&self.us, rng).state.clone(),
                Label::Part(Part::Other),
            ),
            Slot::Organization => (
                self.organizations[rng.below(self.organizations.len())].clone(),
                Label::Kind(Kind::Organization),
            ),
            Slot::Phone => (phone(rng).0, Label::Kind(Kind::Phone)),
            Slot::CreditCard => (card(rng), Label::Kind(Kind::CreditCard)),
            Slot::Iban => (iban(rng), Label::Kind(Kind::Iban)),
            Slot::Email => (email(self.person(rng), rng), Label::Kind(Kind::Email)),
            Slot::Ssn => (ssn(rng), Label::Kind(Kind::UsSsn)),
            Slot::IpAddress => {
                let ip = if rng.below(5) == 0 {
                    ipv6(rng)
                } else {
                    ipv4(rng)
                };
                (ip, Label::Kind(Kind::IpAddress))
            }
            Slot::Ipv6 => (ipv6(rng), Label::Kind(Kind::IpAddress)),
            Slot::MacAddress => (mac(rng), Label::Kind(Kind::MacAddress)),
            Slot::DateOfBirth => (
                date(self.person(rng).birthday, rng),
                Label::Kind(Kind::DateOfBirth),
            ),
            Slot::UnmarkedBirthDate => (date(self.person(rng).birthday, rng), Label::None),
            Slot::DateTime => {
                let d = (
                    1 + rng.below(12) as u32,
                    1 + rng.below(28) as u32,
                    2000 + rng.below(25) as u32,
                );
                (date(d, rng), Label::None)
            }
            Slot::Url => {
                let p = self.person(rng);
                let path = pick(
                    rng,
                    &["photos/2291", "files/share?id=8842", "about", "blog/"],
                );
                (
                    format!("https://www.{}/{path}", p.domain.to_lowercase()),
                    Label::None,
                )
            }
            Slot::UrlCredentials => {
                let p = self.person(rng);
                let url = match rng.below(3) {
                    0 => format!(
                        "https://{}:{}@git.{}/team/app.git",
                        p.username.to_lowercase(),
                        p.password,
                        p.domain.to_lowercase()
                    ),
                    1 => format!(
                        "postgres://{}:{}@db.{}:5432/orders",
                        p.username.to_lowercase(),
                        p.password,
                        p.domain.to_lowercase()
                    ),
                    _ => format!(
                        "ftp://{}:{}@ftp.{}/upload",
                        p.username.to_lowercase(),
                        p.password,
                        p.domain.to_lowercase()
                    ),
                };
                (url, Label::Kind(Kind::UrlCredentials))
            }
            Slot::DriversLicense => {
                let v = if rng.bool() {
                    format!("{}{}", upper(rng, 1), digits(rng, 7))
                } else {
                    format!(
                        "{}{}-{}-{}-{}-{}",
                        upper(rng, 1),
                        digits(rng, 3),
                        digits(rng, 3),
                        digits(rng, 2),
                        digits(rng, 3),
                        digits(rng, 1)
                    )
                };
                (v, Label::Kind(Kind::DriversLicense))
            }
            Slot::Nino => (nino(rng), Label::Kind(Kind::NationalId)),
            Slot::CryptoWallet => {
                let v = if rng.bool() {
                    bech32_address(rng)
                } else {
                    format!("0x{}", hex(rng, 40))
                };
                (v, Label::Kind(Kind::CryptoWallet))
            }
            Slot::AwsKey => {
                let v = format!(
                    "AKIA{}",
                    from_set(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
                );
                (v, Label::Kind(Kind::Secret))
            }
            Slot::GithubToken => (format!("ghp_{}", alnum(rng, 36)), Label::Kind(Kind::Secret)),
            Slot::StripeKey => (
                format!("sk_live_{}", alnum(rng, 24)),
                Label::Kind(Kind::Secret),
            ),
            Slot::SlackToken => {
                let v = format!(
                    "xoxb-{}-{}-{}",
                    digits(rng, 12),
                    digits(rng, 13),
                    alnum(rng, 24)
                );
                (v, Label::Kind(Kind::Secret))
            }
            Slot::Age => ((18 + rng.below(73)).to_string(), Label::None),
            Slot::Year => ((1950 + rng.below(74)).to_string(), Label::None),
            Slot::DayOfWeek => (
                pick(
                    rng,
                    &[
                        "Monday",
                        "Tuesday",
                        "Wednesday",
                        "Thursday",
                        "Friday",
                        "Saturday",
                        "Sunday",
                    ],
                )
                .into(),
                Label::None,
            ),
            Slot::Job => (self.person(rng).occupation.clone(), Label::None),
            Slot::Nationality => (
                pick(
                    rng,
                    &[
                        "French",
                        "German",
                        "American",
                        "Japanese",
                        "Brazilian",
                        "Indian",
                        "Italian",
                        "Mexican",
                        "Canadian",
                        "Spanish",
                    ],
                )
                .into(),
                Label::None,
            ),
            Slot::NationPlural => (
                pick(
                    rng,
                    &[
                        "Germans",
                        "Americans",
                        "Italians",
                        "Canadians",
                        "Brazilians",
                        "Danes",
                    ],
                )
                .into(),
                Label::None,
            ),
            Slot::OrderNumber => (order_number(rng), Label::None),
            Slot::Version => (version(rng), Label::None),
            Slot::Timestamp => (timestamp(rng), Label::None),
            Slot::Uuid => (uuid(rng), Label::None),
            Slot::Price => (price(rng), Label::None),
            Slot::TrackingNumber => (tracking_number(rng), Label::None),
        }
    }
}

/// The spans of the filled slots: labelled kinds as they are, and each run of adjacent address
/// parts (separated by spaces, commas, line breaks and quote marks) as one ADDRESS span when it
/// holds a house number and a street.
fn label_spans(text: &str, filled: &[(usize, usize, Label)]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < filled.len() {
        let (start, end, label) = filled[i];
        match label {
            Label::None => i += 1,
            Label::Kind(kind) => {
                spans.push(Span { kind, start, end });
                i += 1;
            }
            Label::Part(_) => {
                let mut j = i;
                let (mut number, mut street) = (false, false);
                while j < filled.len() {
                    let Label::Part(part) = filled[j].2 else {
                        break;
                    };
                    if j > i {
                        let gap = &text[filled[j - 1].1..filled[j].0];
                        if !gap.chars().all(|c| c.is_whitespace() || ",>?".contains(c)) {
                            break;
                        }
                    }
                    number |= part == Part::Number;
                    street |= part == Part::Street;
                    j += 1;
                }
                if number && street {
                    spans.push(Span {
                        kind: Kind::Address,
                        start,
                        end: filled[j - 1].1,
                    });
                }
                i = j;
            }
        }
    }
    spans
}

/// splitmix64: a hand-written generator rather than `rand`'s StdRng, whose stream may change
/// between rand releases (the set must stay the same for a seed), and it keeps this crate's
/// dependencies as they are.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_5eed_5eed_5eed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

fn from_set(rng: &mut Rng, set: &[u8], n: usize) -> String {
    (0..n).map(|_| set[rng.below(set.len())] as char).collect()
}

fn digits(rng: &mut Rng, n: usize) -> String {
    from_set(rng, b"0123456789", n)
}

fn upper(rng: &mut Rng, n: usize) -> String {
    from_set(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", n)
}

fn hex(rng: &mut Rng, n: usize) -> String {
    from_set(rng, b"0123456789abcdef", n)
}

fn alnum(rng: &mut Rng, n: usize) -> String {
    from_set(
        rng,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        n,
    )
}

/// A street address in the identity's country's order.
fn address(p: &Identity, rng: &mut Rng) -> String {
    let mut s = match p.country_code.as_str() {
        "US" => format!("{}, {}, {} {}", p.street, p.city, p.state, p.zip),
        "GB" | "AU" | "NZ" | "CA" | "IE" => format!("{}, {} {}", p.street, p.city, p.zip),
        _ => format!("{}, {} {}", p.street, p.zip, p.city),
    };
    if rng.below(3) == 0 {
        s.push_str(", ");
        s.push_str(&p.country);
    }
    s
}

fn email(p: &Identity, rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("{}@{}", p.username.to_lowercase(), p.domain.to_lowercase()),
        1 => format!(
            "{}.{}@{}",
            p.username.to_lowercase(),
            rng.below(100),
            pick(
                rng,
                &["gmail.com", "outlook.com", "example.co.uk", "web.de"]
            )
        ),
        _ => p.email.clone(),
    }
}

/// A phone number and the region it is valid in: US, UK, German and French national formats,
/// and international `+CC` formats (those and Spain, the Netherlands, India).
fn phone(rng: &mut Rng) -> (String, &'static str) {
    let us_area = [
        "212", "415", "312", "617", "202", "305", "713", "206", "303", "404",
    ];
    match rng.below(12) {
        0 | 1 => {
            let (a, x, s) = (pick(rng, &us_area), us_exchange(rng), digits(rng, 4));
            let v = match rng.below(3) {
                0 => format!("({a}) {x}-{s}"),
                1 => format!("{a}-{x}-{s}"),
                _ => format!("{a}.{x}.{s}"),
            };
            (v, "US")
        }
        2 => {
            let (a, x, s) = (pick(rng, &us_area), us_exchange(rng), digits(rng, 4));
            (format!("+1 {a} {x} {s}"), "US")
        }
        3 => {
            let m = format!("7{}{}", pick(rng, &["1", "2", "3"]), digits(rng, 2));
            (format!("0{m} {}", digits(rng, 6)), "GB")
        }
        4 => (format!("020 7{} {}", digits(rng, 3), digits(rng, 4)), "GB"),
        5 => {
            if rng.bool() {
                (
                    format!("+44 20 7{} {}", digits(rng, 3), digits(rng, 4)),
                    "GB",
                )
            } else {
                (
                    format!(
                        "+44 7{}{} {}",
                        pick(rng, &["1", "2", "3"]),
                        digits(rng, 2),
                        digits(rng, 6)
                    ),
                    "GB",
                )
            }
        }
        6 => {
            if rng.bool() {
                (format!("030 {}", nonzero_digits(rng, 8)), "DE")
            } else {
                (format!("0151 {}", nonzero_digits(rng, 8)), "DE")
            }
        }
        7 => {
            if rng.bool() {
                (format!("+49 30 {}", nonzero_digits(rng, 8)), "DE")
            } else {
                (format!("+49 151 {}", nonzero_digits(rng, 8)), "DE")
            }
        }
        8 => {
            let lead = pick(rng, &["1", "6"]);
            let groups = fr_groups(rng);
            (format!("0{lead} {}", groups.join(" ")), "FR")
        }
        9 => {
            let lead = pick(rng, &["1", "6"]);
            let groups = fr_groups(rng);
            (format!("+33 {lead} {}", groups.join(" ")), "FR")
        }
        10 => {
            if rng.bool() {
                (
                    format!(
                        "+34 6{} {} {}",
                        digits(rng, 2),
                        digits(rng, 3),
                        digits(rng, 3)
                    ),
                    "ES",
                )
            } else {
                (
                    format!("+31 6 {}{}", 1 + rng.below(5), digits(rng, 7)),
                    "NL",
                )
            }
        }
        _ => (format!("+91 9{} {}", digits(rng, 4), digits(rng, 5)), "IN"),
    }
}

/// The eight digits after a French 01 or 06 in pairs (06 9x and 06 3 9 are unassigned).
fn fr_groups(rng: &mut Rng) -> Vec<String> {
    let mut groups = vec![format!(
        "{}{}",
        from_set(rng, b"0124578", 1),
        digits(rng, 1)
    )];
    groups.extend((0..3).map(|_| digits(rng, 2)));
    groups
}

/// Digits starting with 1–9.
fn nonzero_digits(rng: &mut Rng, n: usize) -> String {
    format!("{}{}", 1 + rng.below(9), digits(rng, n - 1))
}

/// A US exchange: 2–9 first, not N11, not 555.
fn us_exchange(rng: &mut Rng) -> String {
    loop {
        let x = format!("{}{}", 2 + rng.below(8), digits(rng, 2));
        if &x[1..] != "11" && x != "555" {
            return x;
        }
    }
}

/// A card number with a valid Luhn digit: Visa, Mastercard (51–55 and 2221–2720), Amex,
/// Discover and JCB; plain, or grouped with spaces or dashes.
fn card(rng: &mut Rng) -> String {
    let (prefix, len) = match rng.below(6) {
        0 => ("4".to_string(), 16),
        1 => (format!("5{}", 1 + rng.below(5)), 16),
        2 => ((2221 + rng.below(500)).to_string(), 16),
        3 => (pick(rng, &["34", "37"]).to_string(), 15),
        4 => ("6011".to_string(), 16),
        _ => ((3528 + rng.below(62)).to_string(), 16),
    };
    let mut number = prefix.clone();
    number.push_str(&digits(rng, len - 1 - prefix.len()));
    number.push(luhn_digit(&number));
    let groups: Vec<&str> = if len == 15 {
        vec![&number[..4], &number[4..10], &number[10..]]
    } else {
        vec![&number[..4], &number[4..8], &number[8..12], &number[12..]]
    };
    match rng.below(3) {
        0 => number.clone(),
        1 => groups.join(" "),
        _ => groups.join("-"),
    }
}

/// The digit that makes `payload` followed by it pass the Luhn check.
fn luhn_digit(payload: &str) -> char {
    let mut digits: Vec<u8> = payload.bytes().map(|b| b - b'0').collect();
    digits.push(0);
    let last = digits.len() - 1;
    (0..10u8)
        .find(|&d| {
            digits[last] = d;
            checksum::luhn(&digits)
        })
        .map_or('0', |d| char::from(b'0' + d))
}

/// An IBAN with valid check digits: Germany, the UK, France, Spain, the Netherlands, Italy or
/// Switzerland; electronic (no spaces) or printed (groups of four).
fn iban(rng: &mut Rng) -> String {
    let (country, bban) = match rng.below(7) {
        0 => ("DE", digits(rng, 18)),
        1 => ("GB", format!("{}{}", upper(rng, 4), digits(rng, 14))),
        2 => ("FR", digits(rng, 23)),
        3 => ("ES", digits(rng, 20)),
        4 => ("NL", format!("{}{}", upper(rng, 4), digits(rng, 10))),
        5 => ("IT", format!("{}{}", upper(rng, 1), digits(rng, 22))),
        _ => ("CH", digits(rng, 17)),
    };
    let check = 98 - mod97(&format!("{bban}{country}00"));
    let iban = format!("{country}{check:02}{bban}");
    if rng.bool() {
        iban
    } else {
        let chars: Vec<char> = iban.chars().collect();
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// ISO 7064 mod 97-10 of digits and upper-case letters (A = 10).
fn mod97(s: &str) -> u32 {
    s.chars().fold(0, |r, c| match c.to_digit(36) {
        Some(v) if v < 10 => (r * 10 + v) % 97,
        Some(v) => (r * 100 + v) % 97,
        None => r,
    })
}

/// A valid US SSN (area 001–899 but 666, group 01–99, serial 0001–9999), dashed mostly.
fn ssn(rng: &mut Rng) -> String {
    let area = loop {
        let a = 1 + rng.below(899);
        if a != 666 {
            break a;
        }
    };
    let group = 1 + rng.below(99);
    let serial = 1 + rng.below(9999);
    match rng.below(6) {
        0 => format!("{area:03} {group:02} {serial:04}"),
        1 => format!("{area:03}{group:02}{serial:04}"),
        _ => format!("{area:03}-{group:02}-{serial:04}"),
    }
}

/// A unicast address outside loopback (127/8 names this machine, not a person's, and the
/// detector leaves it alone).
fn ipv4(rng: &mut Rng) -> String {
    let first = match 1 + rng.below(222) {
        127 => 223,
        n => n,
    };
    format!(
        "{}.{}.{}.{}",
        first,
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    )
}

fn ipv6(rng: &mut Rng) -> String {
    let first = pick(rng, &["2001", "2a00", "2607", "fe80"]);
    let groups: Vec<String> = (0..7)
        .map(|_| format!("{:x}", rng.below(0x10000)))
        .collect();
    if rng.bool() {
        format!(
            "{first}:{}::{}",
            groups[..2].join(":"),
            groups[4..].join(":")
        )
    } else {
        format!("{first}:{}", groups.join(":"))
    }
}

fn mac(rng: &mut Rng) -> String {
    let bytes: Vec<String> = (0..6).map(|_| hex(rng, 2)).collect();
    match rng.below(4) {
        0 => bytes.join(":"),
        1 => bytes.join(":").to_uppercase(),
        2 => bytes.join("-").to_uppercase(),
        _ => format!(
            "{}{}.{}{}.{}{}",
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]
        ),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A date in one of five common formats.
fn date((m, d, y): (u32, u32, u32), rng: &mut Rng) -> String {
    let month = MONTHS[(m.clamp(1, 12) - 1) as usize];
    match rng.below(5) {
        0 => format!("{m:02}/{d:02}/{y}"),
        1 => format!("{y}-{m:02}-{d:02}"),
        2 => format!("{d} {month} {y}"),
        3 => format!("{month} {d}, {y}"),
        _ => format!("{d:02}.{m:02}.{y}"),
    }
}

/// A UK National Insurance number with a valid prefix and suffix, compact or spaced.
fn nino(rng: &mut Rng) -> String {
    let first = b"ABCEGHJKLMNOPRSTWXYZ";
    let second = b"ABCEGHJKLMNPRSTWXYZ";
    let prefix = loop {
        let p = format!(
            "{}{}",
            first[rng.below(first.len())] as char,
            second[rng.below(second.len())] as char
        );
        if !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&p.as_str()) {
            break p;
        }
    };
    let n = digits(rng, 6);
    let suffix = pick(rng, &["A", "B", "C", "D"]);
    if rng.bool() {
        format!("{prefix}{n}{suffix}")
    } else {
        format!("{prefix} {} {} {} {suffix}", &n[..2], &n[2..4], &n[4..])
    }
}

/// A Bitcoin P2WPKH (bech32, `bc1q…`) address with a valid checksum.
fn bech32_address(rng: &mut Rng) -> String {
    let program: Vec<u8> = (0..20).map(|_| rng.below(256) as u8).collect();
    let mut data = vec![0u8];
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in program {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            data.push(((acc >> bits) & 31) as u8);
        }
    }
    let mut values: Vec<u8> = b"bc".iter().map(|c| c >> 5).collect();
    values.push(0);
    values.extend(b"bc".iter().map(|c| c & 31));
    values.extend(&data);
    values.extend([0; 6]);
    let pm = bech32_polymod(&values) ^ 1;
    data.extend((0..6).map(|i| ((pm >> (5 * (5 - i))) & 31) as u8));
    let tail: String = data
        .iter()
        .map(|&d| BECH32_CHARSET[d as usize] as char)
        .collect();
    format!("bc1{tail}")
}

fn order_number(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("#{}", nonzero_digits(rng, 9)),
        1 => format!("ORD-{}-{}", 2015 + rng.below(10), digits(rng, 6)),
        2 => format!(
            "{}-{}-{}",
            nonzero_digits(rng, 3),
            digits(rng, 7),
            digits(rng, 7)
        ),
        _ => format!("#{}", nonzero_digits(rng, 7)),
    }
}

fn version(rng: &mut Rng) -> String {
    let (a, b, c) = (rng.below(20), rng.below(30), rng.below(100));
    match rng.below(4) {
        0 => format!("v{a}.{b}.{c}"),
        1 => format!("{}.{b}.{c}.{}", 1 + a, rng.below(1000)),
        2 => format!("{}.{b}.{c}-rc.{}", 1 + a, 1 + rng.below(5)),
        _ => format!("10.0.{}.{}", 19041 + rng.below(3600), 100 + rng.below(2900)),
    }
}

fn timestamp(rng: &mut Rng) -> String {
    let (y, mo, d) = (2015 + rng.below(10), 1 + rng.below(12), 1 + rng.below(28));
    let (h, mi, s) = (rng.below(24), rng.below(60), rng.below(60));
    match rng.below(5) {
        0 => format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        1 => format!("{y}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        2 => format!(
            "[{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000]",
            &MONTHS[mo - 1][..3]
        ),
        3 => format!("17{}", digits(rng, 8)),
        _ => format!("{h:02}:{mi:02}:{s:02}.{}", digits(rng, 3)),
    }
}

fn uuid(rng: &mut Rng) -> String {
    let variant = pick(rng, &["8", "9", "a", "b"]);
    format!(
        "{}-{}-4{}-{variant}{}-{}",
        hex(rng, 8),
        hex(rng, 4),
        hex(rng, 3),
        hex(rng, 3),
        hex(rng, 12)
    )
}

fn price(rng: &mut Rng) -> String {
    let (units, cents) = (1 + rng.below(9999), rng.below(100));
    let grouped = if units >= 1000 {
        format!("{},{:03}", units / 1000, units % 1000)
    } else {
        units.to_string()
    };
    match rng.below(6) {
        0 => format!("${grouped}.{cents:02}"),
        1 => format!("€{units}.{cents:02}"),
        2 => format!("£{units}.{cents:02}"),
        3 => format!("{},{cents:02} EUR", grouped.replace(',', ".")),
        4 => format!("USD {grouped}.{cents:02}"),
        _ => format!("¥{grouped}"),
    }
}

fn tracking_number(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!(
            "1Z{}{}{}",
            alnum(rng, 6).to_uppercase(),
            digits(rng, 2),
            digits(rng, 8)
        ),
        1 => {
            let d = format!("9400{}", digits(rng, 18));
            let groups: Vec<&str> = (0..6).map(|i| &d[i * 4..(i * 4 + 4).min(22)]).collect();
            groups.join(" ")
        }
        2 => format!(
            "{} {} {}",
            nonzero_digits(rng, 4),
            digits(rng, 4),
            digits(rng, 4)
        ),
        _ => format!("JD{}", digits(rng, 18)),
    }
}

/// RFC 4180 rows: quoted fields may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn parse_identities(text: &str) -> Result<Vec<Identity>, GuardError> {
    let rows = parse_csv(text);
    let Some((header, rows)) = rows.split_first() else {
        return Ok(Vec::new());
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| GuardError::Setup(format!("{IDENTITIES} has no {name} column")))
    };
    let c = [
        col("Gender")?,
        col("Title")?,
        col("GivenName")?,
        col("MiddleInitial")?,
        col("Surname")?,
        col("StreetAddress")?,
        col("City")?,
        col("State")?,
        col("ZipCode")?,
        col("Country")?,
        col("CountryFull")?,
        col("EmailAddress")?,
        col("Username")?,
        col("Password")?,
        col("Birthday")?,
        col("Occupation")?,
        col("Domain")?,
    ];
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(f) = c
            .iter()
            .map(|&i| row.get(i).map(|s| s.trim().to_string()))
            .collect::<Option<Vec<String>>>()
        else {
            continue;
        };
        let birthday: Vec<u32> = f[14].split('/').filter_map(|x| x.parse().ok()).collect();
        let &[m, d, y] = birthday.as_slice() else {
            continue;
        };
        if f[2].is_empty() || f[4].is_empty() {
            continue;
        }
        let mut f = f.into_iter();
        let mut next = || f.next().unwrap_or_default();
        out.push(Identity {
            male: next() == "male",
            title: next(),
            given: next(),
            middle: next(),
            surname: next(),
            street: next(),
            city: next(),
            state: next(),
            zip: next(),
            country_code: next(),
            country: next(),
            email: next(),
            username: next(),
            password: next(),
            birthday: {
                next();
                (m, d, y)
            },
            occupation: next(),
            domain: next(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES_FIXTURE: &str = "My name is {{person}} and my card is {{credit_card_number}}\n\
        {{name}}\\n{{building_number}} {{street_name}}\\n {{city}}\\n {{country}} {{postcode}}\n\
        I'm moving to {{city}}, {{country}} on {{day_of_week}}\n\
        Call {{first_name}} on {{phone_number}}\\, or mail {{email}}\n\
        The corner of {street_name} and {street_name}\n";
    const IDENTITIES_FIXTURE: &str = "\u{feff}Number,Gender,NameSet,Title,GivenName,MiddleInitial,Surname,StreetAddress,City,State,StateFull,ZipCode,Country,CountryFull,EmailAddress,Username,Password,TelephoneNumber,TelephoneCountryCode,MothersMaiden,Birthday,Age,CCType,CCNumber,CVV2,CCExpires,NationalID,Occupation,Company,Domain\n\
        1,female,Czech,Mrs.,Marie,J,Hamanová,P.O. Box 255,Kangerlussuaq,QE,Qeqqata,3910,GL,Greenlander,MarieHamanova@armyspy.com,Wasco1982,eiZookooB7,84 23 30,299,Kubíková,3/29/1982,37,MasterCard,5.54563E+15,511,Jan-20,,Surveillance officer,Simple Solutions,MarathonDancing.gl\n\
        2,male,American,Mr.,Jürgen,K,O'Neil,1659 Hoog St,\"Springfield, East\",IL,Illinois,62701,US,United States,jk@example.com,Jurg,pa55word,555,1,X,12/1/1970,50,Visa,4.1E+15,1,Jan-20,,Baker,\"Smith, Jones and Co\",example.com\n";
    const ORGS_FIXTURE: &str = "organization\nAalberts NV\n\"White, Nelson and Townsend\"\n\"\"\n";

    fn corpus() -> Corpus {
        Corpus::parse(TEMPLATES_FIXTURE, IDENTITIES_FIXTURE, ORGS_FIXTURE).expect("fixture parses")
    }

    /// Checked by the detectors' own Luhn, not the generator's.
    fn luhn_ok(number: &str) -> bool {
        let digits: Vec<u8> = number
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        checksum::luhn(&digits)
    }

    #[test]
    fn csv_fields_keep_quoted_commas_and_the_organisations_skip_blanks() {
        let c = corpus();
        assert_eq!(c.identities.len(), 2);
        assert_eq!(c.identities[1].city, "Springfield, East");
        assert_eq!(c.identities[1].birthday, (12, 1, 1970));
        assert_eq!(
            c.organizations,
            vec!["Aalberts NV", "White, Nelson and Townsend"]
        );
        assert_eq!(c.streets, vec!["Hoog St"]);
    }

    #[test]
    fn spans_point_at_the_inserted_values() {
        let c = corpus();
        let samples = c.samples(500, 7);
        let mut kinds = std::collections::BTreeSet::new();
        for s in &samples {
            for span in &s.spans {
                assert!(span.start < span.end && span.end <= s.text.len(), "{s:?}");
                let value = &s.text[span.start..span.end];
                assert_eq!(value.trim(), value, "{s:?}");
                kinds.insert(span.kind);
                match span.kind {
                    Kind::CreditCard => assert!(luhn_ok(value), "{value}"),
                    Kind::Email => assert!(value.contains('@'), "{value}"),
                    Kind::Iban => {
                        let compact: String = value.split_whitespace().collect();
                        let (head, tail) = compact.split_at(4);
                        assert_eq!(mod97(&format!("{tail}{head}")), 1, "{value}");
                    }
                    Kind::Person => assert!(
                        ["Marie", "Hamanová", "Jürgen", "O'Neil"]
                            .iter()
                            .any(|n| value.contains(n)),
                        "{value}"
                    ),
                    _ => {}
                }
            }
            for w in s.spans.windows(2) {
                assert!(w[0].end <= w[1].start, "{s:?}");
            }
        }
        for k in [
            Kind::Person,
            Kind::CreditCard,
            Kind::Address,
            Kind::Phone,
            Kind::Email,
        ] {
            assert!(kinds.contains(&k), "no {k} span in 500 samples");
        }
    }

    #[test]
    fn a_street_address_block_is_one_span_and_a_lone_city_is_none() {
        let c = corpus();
        let block = c
            .samples(500, 3)
            .into_iter()
            .find(|s| s.text.contains("Hoog St\n"))
            .expect("the address-block template is drawn");
        let address: Vec<&Span> = block
            .spans
            .iter()
            .filter(|s| s.kind == Kind::Address)
            .collect();
        assert_eq!(address.len(), 1, "{block:?}");
        let value = &block.text[address[0].start..address[0].end];
        assert!(
            value.contains("Hoog St") && value.contains('\n'),
            "{value:?}"
        );
        let moving = c
            .samples(500, 3)
            .into_iter()
            .find(|s| s.text.starts_with("I'm moving to"))
            .expect("the city template is drawn");
        assert!(moving.spans.is_empty(), "{moving:?}");
        let corner = c
            .samples(500, 3)
            .into_iter()
            .find(|s| s.text.starts_with("The corner"))
            .expect("the single-brace template is drawn");
        assert_eq!(corner.text, "The corner of {street_name} and {street_name}");
    }

    #[test]
    fn the_same_seed_gives_the_same_set_and_another_seed_another() {
        let c = corpus();
        assert_eq!(c.samples(200, 1), c.samples(200, 1));
        assert_ne!(c.samples(200, 1), c.samples(200, 2));
    }

    #[test]
    fn negatives_carry_no_spans_and_every_category_appears() {
        let c = corpus();
        let samples = c.samples(1000, 11);
        let mut categories = std::collections::BTreeSet::new();
        for s in samples.iter().filter(|s| s.negative.is_some()) {
            assert!(s.spans.is_empty(), "{s:?}");
            categories.extend(s.negative.clone());
        }
        let want: std::collections::BTreeSet<String> =
            NEGATIVE.iter().map(|(c, _)| c.to_string()).collect();
        assert_eq!(categories, want);
    }

    #[test]
    fn generated_values_are_valid() {
        let mut rng = Rng::new(5);
        for _ in 0..2000 {
            assert!(luhn_ok(&card(&mut rng)));
            let (number, region) = phone(&mut rng);
            let region = rlibphonenumber::Region::from_code(region).ok();
            let parsed = rlibphonenumber::PHONE_NUMBER_UTIL
                .parse(&number, region)
                .unwrap_or_else(|e| panic!("{number}: {e:?}"));
            assert!(
                rlibphonenumber::PHONE_NUMBER_UTIL.is_valid_number(&parsed),
                "{number} is not a valid number"
            );
            let s = ssn(&mut rng);
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            assert_eq!(digits.len(), 9);
            assert!(&digits[..3] != "000" && &digits[..3] != "666" && &digits[..3] < "900");
            assert!(&digits[3..5] != "00" && &digits[5..] != "0000");
            let i: String = iban(&mut rng).split_whitespace().collect();
            let (head, tail) = i.split_at(4);
            assert_eq!(mod97(&format!("{tail}{head}")), 1, "{i}");
            let len = match &i[..2] {
                "DE" => 22,
                "GB" => 22,
                "FR" => 27,
                "ES" => 24,
                "NL" => 18,
                "IT" => 27,
                _ => 21,
            };
            assert_eq!(i.len(), len, "{i}");
        }
        // BIP-173's example P2WPKH address: the checksum of its data must be the same.
        let known = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        let charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        let mut values: Vec<u8> = vec![3, 3, 0, 2, 3];
        values.extend(
            known[3..]
                .chars()
                .filter_map(|c| charset.find(c).map(|i| i as u8)),
        );
        assert_eq!(bech32_polymod(&values), 1);
        let addr = bech32_address(&mut rng);
        let mut values: Vec<u8> = vec![3, 3, 0, 2, 3];
        values.extend(
            addr[3..]
                .chars()
                .filter_map(|c| charset.find(c).map(|i| i as u8)),
        );
        assert_eq!((addr.len(), bech32_polymod(&values)), (42, 1), "{addr}");
    }

    #[test]
    fn the_fetched_set_loads() {
        let dir = std::env::var_os("SWITCHYARD_MODELS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
            .join(DIR);
        let corpus = Corpus::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(corpus.presidio.len() > 200 && corpus.identities.len() >= 2990);
        let samples = corpus.samples(2000, 1);
        for s in &samples {
            for span in &s.spans {
                assert!(s.text.is_char_boundary(span.start) && s.text.is_char_boundary(span.end));
            }
        }
        let people = samples
            .iter()
            .flat_map(|s| &s.spans)
            .filter(|s| s.kind == Kind::Person)
            .count();
        assert!(people > 300, "{people} names");
    }

    #[test]
    fn a_missing_folder_names_the_fetch_script() {
        let err = Corpus::load(Path::new("/nonexistent/presidio")).expect_err("no such folder");
        assert!(
            err.to_string().contains("scripts/fetch-models.sh --data"),
            "{err}"
        );
    }
}
