use serde::{Deserialize, Serialize};

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelObject>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelObject {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

impl ModelList {
    pub fn new(data: Vec<ModelObject>) -> Self {
        ModelList {
            object: "list".into(),
            data,
        }
    }
}

impl ModelObject {
    pub fn new(id: impl Into<String>, owned_by: impl Into<String>) -> Self {
        ModelObject {
            id: id.into(),
            object: "model".into(),
            created: 0,
            owned_by: owned_by.into(),
        }
    }
}
