//! What the router looks at: cheap facts computed from the request, plus what the server's
//! other stages found (the conversation's embedding, the guard's findings, the model that
//! answered this conversation before). Computing them is the server's job; judging them is
//! the router's.

use std::collections::BTreeMap;

use switchyard_api::{ChatRequest, Role};

use crate::data::Features;
use crate::learned::cheap_features;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// The whole conversation as text, one `role: text` line per message: multi-turn requests
    /// are routed on the conversation, not only on the last message.
    pub conversation: String,
    /// Characters in the conversation's messages.
    pub chars: usize,
    /// User turns so far.
    pub turns: usize,
    pub has_tools: bool,
    pub has_code: bool,
    /// The request's `user` field.
    pub user: Option<String>,
    /// Request metadata the router may match on (header names lowercased).
    pub metadata: BTreeMap<String, String>,
    /// The conversation's sentence embedding, when a semantic route or learned score needs it.
    pub embedding: Option<Vec<f32>>,
    /// Kinds of personal data the guard found (e.g. "email", "iban").
    pub pii: Vec<String>,
    /// The model that answered this conversation's previous turn, when the server keeps
    /// conversations on one model.
    pub previous_model: Option<String>,
}

impl Signals {
    /// The signals that come from the request alone.
    pub fn from_request(req: &ChatRequest) -> Signals {
        let mut conversation = String::new();
        let mut chars = 0;
        let mut turns = 0;
        for m in &req.messages {
            let text = m.text();
            chars += text.chars().count();
            if m.role == Role::User {
                turns += 1;
            }
            conversation.push_str(m.role.as_str());
            conversation.push_str(": ");
            conversation.push_str(&text);
            conversation.push('\n');
        }
        let has_tools = req.tools.as_ref().is_some_and(|t| !t.is_empty())
            || req
                .messages
                .iter()
                .any(|m| m.tool_calls.is_some() || m.role == Role::Tool);
        Signals {
            has_code: looks_like_code(&conversation),
            conversation,
            chars,
            turns,
            has_tools,
            user: req.user.clone(),
            ..Signals::default()
        }
    }

    /// The text the learned score reads its cheap features from.
    pub fn learned_text(&self) -> &str {
        &self.conversation
    }

    /// The learned router's features of this conversation, as `[router] record_features`
    /// logs them: the embedding (none when it was not computed) and the cheap features of
    /// [`Signals::learned_text`].
    pub fn learned_features(&self) -> Option<Features> {
        Some(Features {
            embedding: self.embedding.clone()?,
            cheap: cheap_features(self.learned_text()),
        })
    }

    /// The text a semantic route or learned score should embed: the user's turns, newest last.
    pub fn text_to_embed(req: &ChatRequest) -> String {
        req.messages
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| m.text())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A fenced block, or several lines that end the way code lines do.
fn looks_like_code(text: &str) -> bool {
    if text.contains("```") {
        return true;
    }
    let code_lines = text
        .lines()
        .map(str::trim_end)
        .filter(|l| {
            l.ends_with(';')
                || l.ends_with('{')
                || l.ends_with("):")
                || l.starts_with("    return ")
        })
        .count();
    code_lines >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_api::Message;

    #[test]
    fn the_whole_conversation_counts() {
        let req = ChatRequest {
            model: "auto".into(),
            messages: vec![
                Message::new(Role::System, "Be brief."),
                Message::new(Role::User, "Hi"),
                Message::new(Role::Assistant, "Hello!"),
                Message::new(Role::User, "fn main() {\n    let x = 1;\n}"),
            ],
            ..Default::default()
        };
        let s = Signals::from_request(&req);
        assert_eq!(s.turns, 2);
        assert!(s.has_code);
        assert!(!s.has_tools);
        assert!(s.conversation.starts_with("system: Be brief.\nuser: Hi\n"));
        assert_eq!(
            Signals::text_to_embed(&req),
            "Hi\nfn main() {\n    let x = 1;\n}"
        );
    }
}
