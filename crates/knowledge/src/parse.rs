//! Documents to blocks of text, each under the path of headings it sits in.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use scraper::{ElementRef, Html, Node};

/// The formats a knowledge base reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Text,
    Html,
    Pdf,
}

impl Format {
    /// The format a file name's extension says; none for any other file.
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Text),
            "html" | "htm" => Some(Format::Html),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    }

    /// The format a `Content-Type` names (its parameters ignored); none for any other type.
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/markdown" | "text/x-markdown" => Some(Format::Markdown),
            "text/plain" => Some(Format::Text),
            "text/html" | "application/xhtml+xml" => Some(Format::Html),
            "application/pdf" => Some(Format::Pdf),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Text => "text",
            Format::Html => "html",
            Format::Pdf => "pdf",
        }
    }
}

/// A paragraph, list item, table row or code block, with the headings above it, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub headings: Vec<String>,
    pub text: String,
}

/// How long `pdftotext` may take over one document before it is stopped.
const PDF_TIMEOUT: Duration = Duration::from_secs(30);

/// The blocks of a document; an error says why it cannot be read.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Vec<Block>, String> {
    match format {
        Format::Pdf => parse_text(&pdf_text(bytes)?),
        _ => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| format!("not UTF-8 text ({e}); save it as UTF-8"))?;
            match format {
                Format::Markdown => Ok(parse_markdown(text)),
                Format::Html => Ok(parse_html(text)),
                _ => parse_text(text),
            }
        }
    }
}

/// Collects blocks: text accumulates until a block ends.
#[derive(Default)]
struct Blocks {
    headings: Vec<String>,
    current: String,
    out: Vec<Block>,
}

impl Blocks {
    fn push_text(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn end_block(&mut self) {
        let text = collapse(&self.current);
        self.current.clear();
        if !text.is_empty() {
            self.out.push(Block {
                headings: self.headings.clone(),
                text,
            });
        }
    }

    /// A heading of `level` (1 outermost) replaces that level and every deeper one.
    fn heading(&mut self, level: usize, text: &str) {
        let text = collapse(text);
        if text.is_empty() {
            return;
        }
        self.headings.truncate(level.saturating_sub(1));
        self.headings.push(text);
    }
}

/// Runs of whitespace as one space, ends trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_markdown(text: &str) -> Vec<Block> {
    let mut blocks = Blocks::default();
    let mut heading: Option<(usize, String)> = None;
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                blocks.end_block();
                heading = Some((heading_depth(level), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading.take() {
                    blocks.heading(level, &text);
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                match heading.as_mut() {
                    Some((_, h)) => h.push_str(&t),
                    None => blocks.push_text(&t),
                }
            }
            Event::SoftBreak | Event::HardBreak => match heading.as_mut() {
                Some((_, h)) => h.push(' '),
                None => blocks.push_text(" "),
            },
            Event::End(TagEnd::TableCell) => blocks.push_text(" | "),
            Event::Start(Tag::Item) => blocks.end_block(),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::TableHead
                | TagEnd::TableRow
                | TagEnd::BlockQuote(_),
            ) => blocks.end_block(),
            _ => {}
        }
    }
    blocks.end_block();
    blocks.out
}

fn heading_depth(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Elements whose text is never part of a document's content.
const HTML_SKIPPED: [&str; 11] = [
    "head", "script", "style", "noscript", "template", "nav", "footer", "header", "svg", "form",
    "button",
];

/// Elements that end the text before them and start a block of their own.
const HTML_BLOCKS: [&str; 22] = [
    "p",
    "div",
    "li",
    "tr",
    "pre",
    "blockquote",
    "section",
    "article",
    "main",
    "aside",
    "table",
    "thead",
    "tbody",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "figcaption",
    "caption",
    "hr",
    "body",
];

fn parse_html(text: &str) -> Vec<Block> {
    let document = Html::parse_document(text);
    let mut blocks = Blocks::default();
    walk_html(document.root_element(), &mut blocks);
    blocks.end_block();
    blocks.out
}

fn walk_html(element: ElementRef<'_>, blocks: &mut Blocks) {
    for child in element.children() {
        match child.value() {
            Node::Text(text) => blocks.push_text(text),
            Node::Element(e) => {
                let Some(child) = ElementRef::wrap(child) else {
                    continue;
                };
                let name = e.name();
                if HTML_SKIPPED.contains(&name) {
                    continue;
                }
                if let Some(level) = html_heading(name) {
                    blocks.end_block();
                    let text: String = child.text().collect();
                    blocks.heading(level, &text);
                } else if name == "br" {
                    blocks.push_text(" ");
                } else if name == "td" || name == "th" {
                    walk_html(child, blocks);
                    blocks.push_text(" | ");
                } else if HTML_BLOCKS.contains(&name) {
                    blocks.end_block();
                    walk_html(child, blocks);
                    blocks.end_block();
                } else {
                    walk_html(child, blocks);
                }
            }
            _ => {}
        }
    }
}

fn html_heading(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// Plain text has no markup, so this is by hand: paragraphs are separated by blank lines (or
/// form feeds, between PDF pages), and a lone short line without closing punctuation that is
/// followed by a paragraph is taken as a heading (the title of a section).
fn parse_text(text: &str) -> Result<Vec<Block>, String> {
    let paragraphs: Vec<String> = text
        .replace("\r\n", "\n")
        .split(['\u{c}'])
        .flat_map(|page| {
            page.split("\n\n")
                .map(collapse)
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    if paragraphs.is_empty() {
        return Err("it has no text".into());
    }
    let mut blocks = Blocks::default();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        let next_is_body = paragraphs.get(i + 1).is_some_and(|n| !looks_like_title(n));
        if looks_like_title(paragraph) && next_is_body {
            // An all-capitals title line is the document's top heading.
            let level = if paragraph.chars().any(char::is_lowercase) {
                2
            } else {
                1
            };
            blocks.heading(level.min(blocks.headings.len() + 1), paragraph);
        } else {
            blocks.push_text(paragraph);
            blocks.end_block();
        }
    }
    Ok(blocks.out)
}

fn looks_like_title(paragraph: &str) -> bool {
    paragraph.chars().count() <= 80
        && !paragraph.ends_with(['.', ',', ';', ':', '!', '?'])
        && paragraph.chars().any(char::is_alphabetic)
}

/// The text of a PDF through poppler's `pdftotext`, run as a subprocess with a timeout so that a
/// malformed file can neither crash nor hang the ingest.
fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    let mut file = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .map_err(|e| format!("cannot write a temporary file for pdftotext: {e}"))?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write a temporary file for pdftotext: {e}"))?;
    let mut child = Command::new("pdftotext")
        .args(["-q", "-enc", "UTF-8"])
        .arg(file.path())
        .arg("-")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot run pdftotext ({e}); install poppler-utils (scripts/setup.sh does)")
        })?;
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut s) = stdout {
            let _ = std::io::Read::read_to_end(&mut s, &mut out);
        }
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < PDF_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "pdftotext took longer than {} s over it",
                    PDF_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("pdftotext failed: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err("it is not a readable PDF (pdftotext could not open it)".into());
    }
    String::from_utf8(out).map_err(|e| format!("pdftotext wrote text that is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(blocks: &[Block]) -> Vec<(String, String)> {
        blocks
            .iter()
            .map(|b| (b.headings.join(" > "), b.text.clone()))
            .collect()
    }

    #[test]
    fn markdown_blocks_carry_their_heading_path() {
        let md = "# Billing\n\nIntro text.\n\n## Late payment\n\nA fee of **$9.50**\napplies.\n\n- first\n- second\n\n# Plans\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
        assert_eq!(
            texts(&parse_markdown(md)),
            vec![
                ("Billing".into(), "Intro text.".into()),
                (
                    "Billing > Late payment".into(),
                    "A fee of $9.50 applies.".into()
                ),
                ("Billing > Late payment".into(), "first".into()),
                ("Billing > Late payment".into(), "second".into()),
                ("Plans".into(), "a | b |".into()),
                ("Plans".into(), "1 | 2 |".into()),
            ]
        );
    }

    #[test]
    fn html_skips_scripts_and_navigation_and_keeps_tables() {
        let html = "<html><head><title>T</title><script>var x=1;</script></head><body><nav>Home | About</nav><h1>Roaming</h1><p>Daily pass <b>$5</b>.</p><h2>Rates</h2><table><tr><th>Zone</th><th>Price</th></tr><tr><td>EU</td><td>$5</td></tr></table><footer>(c) Corvane</footer></body></html>";
        assert_eq!(
            texts(&parse_html(html)),
            vec![
                ("Roaming".into(), "Daily pass $5.".into()),
                ("Roaming > Rates".into(), "Zone | Price |".into()),
                ("Roaming > Rates".into(), "EU | $5 |".into()),
            ]
        );
    }

    #[test]
    fn plain_text_takes_lone_short_lines_as_headings() {
        let text = "RETURNS POLICY\n\nDevices may be returned.\n\nWithin 14 days\n\nA full refund is given.\nNo questions asked.\n";
        assert_eq!(
            parse_text(text)
                .unwrap()
                .iter()
                .map(|b| (b.headings.join(" > "), b.text.clone()))
                .collect::<Vec<_>>(),
            vec![
                ("RETURNS POLICY".into(), "Devices may be returned.".into()),
                (
                    "RETURNS POLICY > Within 14 days".into(),
                    "A full refund is given. No questions asked.".into()
                ),
            ]
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_with_the_reason() {
        let err = parse(Format::Text, &[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn formats_come_from_extensions_and_media_types() {
        assert_eq!(Format::of_path(Path::new("a/B.MD")), Some(Format::Markdown));
        assert_eq!(Format::of_path(Path::new("a/b.htm")), Some(Format::Html));
        assert_eq!(Format::of_path(Path::new("a/b.png")), None);
        assert_eq!(
            Format::of_media_type("text/html; charset=utf-8"),
            Some(Format::Html)
        );
        assert_eq!(Format::of_media_type("image/png"), None);
    }
}
