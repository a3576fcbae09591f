//! Screening a chat request: every text a model would see (each message's content and text
//! parts, tool-call arguments, tool results, the `user` field) is scanned once; a redacted
//! copy replaces the findings of chosen kinds with the vault's placeholders.

use std::collections::BTreeMap;

use serde_json::Value;
use switchyard_api::{ChatRequest, Content};

use crate::vault::Vault;
use crate::{Detector, Finding, GuardError, Kind};

/// What the guard found in a request, text by text (in [`each_text`]'s order).
#[derive(Debug, Default, Clone)]
pub struct Screening {
    per_text: Vec<Vec<Finding>>,
}

impl Screening {
    pub fn of(detector: &Detector, req: &ChatRequest) -> Result<Screening, GuardError> {
        let mut per_text = Vec::new();
        let mut failed = None;
        each_text(req, |text| match detector.scan(text) {
            Ok(found) => per_text.push(found),
            Err(e) => {
                per_text.push(Vec::new());
                failed.get_or_insert(e);
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(Screening { per_text }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.per_text.iter().all(Vec::is_empty)
    }

    /// How many findings of each kind (counting repeats).
    pub fn kinds(&self) -> BTreeMap<Kind, usize> {
        let mut kinds = BTreeMap::new();
        for f in self.per_text.iter().flatten() {
            *kinds.entry(f.kind).or_default() += 1;
        }
        kinds
    }

    /// A vault that will not hand out placeholders the request already holds.
    pub fn vault(req: &ChatRequest) -> Vault {
        let mut vault = Vault::default();
        each_text(req, |t| vault.keep_out_placeholders_in(t));
        vault
    }

    /// `req` with the findings of the kinds `redact` says yes to replaced by placeholders.
    pub fn redact(
        &self,
        req: &ChatRequest,
        vault: &mut Vault,
        redact: impl Fn(Kind) -> bool,
    ) -> ChatRequest {
        let mut out = req.clone();
        let mut i = 0;
        each_text_mut(&mut out, |text| {
            let chosen: Vec<Finding> = self
                .per_text
                .get(i)
                .map(|found| found.iter().filter(|f| redact(f.kind)).cloned().collect())
                .unwrap_or_default();
            if !chosen.is_empty() {
                *text = vault.redact(text, &chosen);
            }
            i += 1;
        });
        out
    }
}

/// Calls `f` on every text of the request a model would see, in a fixed order.
pub fn each_text(req: &ChatRequest, mut f: impl FnMut(&str)) {
    for m in &req.messages {
        match &m.content {
            Some(Content::Text(t)) => f(t),
            Some(Content::Parts(parts)) => {
                for t in parts.iter().filter_map(|p| p.text.as_deref()) {
                    f(t);
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter().flatten() {
            if let Some(Value::String(args)) = call.get("function").and_then(|f| f.get("arguments"))
            {
                f(args);
            }
        }
    }
    if let Some(user) = &req.user {
        f(user);
    }
}

/// [`each_text`], each text given to change.
fn each_text_mut(req: &mut ChatRequest, mut f: impl FnMut(&mut String)) {
    for m in &mut req.messages {
        match &mut m.content {
            Some(Content::Text(t)) => f(t),
            Some(Content::Parts(parts)) => {
                for t in parts.iter_mut().filter_map(|p| p.text.as_mut()) {
                    f(t);
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter_mut().flatten() {
            if let Some(Value::String(args)) = call
                .get_mut("function")
                .and_then(|f| f.get_mut("arguments"))
            {
                f(args);
            }
        }
    }
    if let Some(user) = &mut req.user {
        f(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DetectorConfig;

    fn request(body: serde_json::Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn every_text_a_model_sees_is_redacted_with_one_numbering() {
        let detector = Detector::new(&DetectorConfig::default()).unwrap();
        let req = request(serde_json::json!({
            "model": "m",
            "user": "ann@example.com",
            "messages": [
                {"role": "system", "content": "Reply to ann@example.com."},
                {"role": "user", "content": [{"type": "text", "text": "I am bob@example.com"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "t", "type": "function",
                    "function": {"name": "mail", "arguments": "{\"to\": \"bob@example.com\"}"}}]},
                {"role": "tool", "tool_call_id": "t", "content": "sent to bob@example.com"}
            ]
        }));
        let screening = Screening::of(&detector, &req).unwrap();
        assert_eq!(screening.kinds().get(&Kind::Email), Some(&5));
        let mut vault = Screening::vault(&req);
        let redacted = screening.redact(&req, &mut vault, |k| k == Kind::Email);
        let mut texts = Vec::new();
        each_text(&redacted, |t| texts.push(t.to_owned()));
        assert_eq!(
            texts,
            [
                "Reply to <EMAIL_1>.",
                "I am <EMAIL_2>",
                "{\"to\": \"<EMAIL_2>\"}",
                "sent to <EMAIL_2>",
                "<EMAIL_1>",
            ]
        );
        let kept = screening.redact(&req, &mut vault, |_| false);
        assert_eq!(kept, req, "kinds not chosen are left as they are");
    }
}
