//! What kind of body a `content-type` announces, and so how it is scanned.

/// What kind of body a `content-type` announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Text,
    Form,
    EventStream,
    Other,
}

/// `application/json`, `*/*+json` → Json; `text/event-stream` and AWS
/// `application/vnd.amazon.eventstream` → EventStream;
/// `application/x-www-form-urlencoded` → Form; `text/*`, NDJSON, XML,
/// GraphQL, JavaScript → Text; anything else → Other (not scanned).
pub fn body_kind(content_type: &str) -> BodyKind {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "text/event-stream" || mime == "application/vnd.amazon.eventstream" {
        BodyKind::EventStream
    } else if mime == "application/json" || mime.ends_with("+json") || mime == "text/json" {
        BodyKind::Json
    } else if mime == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else if mime.starts_with("text/")
        || mime == "application/x-ndjson"
        || mime == "application/jsonl"
        || mime == "application/xml"
        || mime.ends_with("+xml")
        || mime == "application/graphql"
        || mime == "application/javascript"
    {
        BodyKind::Text
    } else {
        BodyKind::Other
    }
}
