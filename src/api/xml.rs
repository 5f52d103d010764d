//! A small XML writer for EC2 responses: every text value escaped, lists as `<xSet><item>`, the `{Action}Response` envelope.

use std::fmt::{Display, Write as _};
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::XML_CONTENT_TYPE;

/// The namespace of every EC2 response (API version 2016-11-15).
pub const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Builds an XML document into a string. Element names are trusted (they come from our code);
/// text is always escaped, so a hostile tag value can never inject markup.
#[derive(Debug, Default, Clone)]
pub struct XmlWriter {
    buf: String,
}

impl XmlWriter {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// `<?xml version="1.0" encoding="UTF-8"?>`, as EC2 starts its documents.
    pub fn declaration(&mut self) {
        self.buf
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    }

    /// `<name>…</name>` with `body` writing the children.
    pub fn el(&mut self, name: &str, body: impl FnOnce(&mut Self)) {
        self.open(name);
        body(self);
        self.close(name);
    }

    /// `<name xmlns="namespace">…</name>`: a document's root element (the namespace is ours).
    pub fn root(&mut self, name: &str, namespace: &str, body: impl FnOnce(&mut Self)) {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str(" xmlns=\"");
        self.buf.push_str(namespace);
        self.buf.push_str("\">");
        body(self);
        self.close(name);
    }

    /// `<name>text</name>`, with the text escaped.
    pub fn field(&mut self, name: &str, value: impl Display) {
        self.open(name);
        // Formatted straight into the document through the escaper: no string per value.
        let mut text = Escaping(&mut self.buf);
        write!(text, "{value}").expect("writing to a String cannot fail");
        self.close(name);
    }

    /// Escaped text in the element being written: the value of a plain list's `<item>`.
    pub fn text(&mut self, value: impl Display) {
        let mut text = Escaping(&mut self.buf);
        write!(text, "{value}").expect("writing to a String cannot fail");
    }

    /// Appends a fragment this writer (or another `XmlWriter`) made earlier, as it is: for
    /// elements rendered once and reused while their object is unchanged.
    pub fn fragment(&mut self, xml: &str) {
        self.buf.push_str(xml);
    }

    /// A writer whose buffer starts with room for `capacity` bytes, for large documents.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: String::with_capacity(capacity),
        }
    }

    /// `<name>text</name>` when there is a value; nothing otherwise (EC2 omits absent members).
    pub fn opt_field<T: Display>(&mut self, name: &str, value: Option<T>) {
        if let Some(value) = value {
            self.field(name, value);
        }
    }

    /// `<name/>`: an empty element (EC2's empty strings and empty lists).
    pub fn empty(&mut self, name: &str) {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str("/>");
    }

    /// `<name><item>…</item>…</name>`, one `item` per element of `items`.
    pub fn set<I>(&mut self, name: &str, items: I, mut item: impl FnMut(&mut Self, I::Item))
    where
        I: IntoIterator,
    {
        self.open(name);
        for i in items {
            self.el("item", |w| item(w, i));
        }
        self.close(name);
    }

    /// The document so far.
    pub fn finish(self) -> String {
        self.buf
    }

    fn open(&mut self, name: &str) {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
    }

    fn close(&mut self, name: &str) {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }
}

/// A `fmt::Write` that escapes everything written through it into the document.
struct Escaping<'a>(&'a mut String);

impl std::fmt::Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        push_escaped(self.0, text);
        Ok(())
    }
}

/// Escapes text for element content. quick-xml's `partial_escape` escapes `<`, `>` and `&`, all
/// element text needs (quotes stay literal, as in AWS's own messages: `The instance ID 'i-…'`); characters
/// XML 1.0 cannot carry at all (most C0 controls, U+FFFE/U+FFFF) become U+FFFD so the document
/// stays well-formed whatever a client sent, and CR is written as a reference so it survives
/// the parser's line-end normalisation.
fn push_escaped(buf: &mut String, text: &str) {
    // Most values (ids, states, timestamps) need no escaping: copy them in one go. A byte
    // scan is far cheaper than the char-by-char path, and DescribeInstances writes ~60
    // values per instance.
    let plain = text
        .bytes()
        .all(|b| b >= 0x20 && !matches!(b, b'<' | b'>' | b'&' | 0xEF));
    if plain {
        buf.push_str(text);
        return;
    }
    let escaped = quick_xml::escape::partial_escape(text);
    for c in escaped.chars() {
        match c {
            '\r' => buf.push_str("&#xD;"),
            '\t' | '\n' => buf.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => buf.push('\u{FFFD}'),
            c => buf.push(c),
        }
    }
}

/// The text escaped as it would appear in element content (for tests and callers that build strings).
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

/// The envelope's opening, `<?xml …?><{Action}Response xmlns=…><requestId>…</requestId>`,
/// and its closing, to put around an action's result members.
fn envelope_parts(action: &str, request_id: &str) -> (String, String) {
    let mut w = XmlWriter::with_capacity(160 + action.len() + request_id.len());
    w.declaration();
    w.buf.push('<');
    w.buf.push_str(action);
    w.buf.push_str("Response xmlns=\"");
    w.buf.push_str(EC2_NAMESPACE);
    w.buf.push_str("\">");
    w.field("requestId", request_id);
    (w.finish(), format!("</{action}Response>"))
}

/// A successful EC2 answer: HTTP 200 with the envelope around `members`. The members are
/// sent as they are, between the envelope's two ends, never copied: DescribeInstances'
/// members run to megabytes.
pub fn success(action: &str, request_id: &str, members: String) -> Response {
    let (head, tail) = envelope_parts(action, request_id);
    let length = head.len() + members.len() + tail.len();
    ok_response(length, [head, members, tail].map(axum::body::Bytes::from))
}

/// HTTP 200, XML, of `length` bytes sent as `parts` (never copied together).
fn ok_response(
    length: usize,
    parts: impl IntoIterator<Item = axum::body::Bytes, IntoIter: Send + 'static>,
) -> Response {
    let parts = parts.into_iter().map(Ok::<_, std::convert::Infallible>);
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(XML_CONTENT_TYPE),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
        ],
        axum::body::Body::from_stream(futures::stream::iter(parts)),
    )
        .into_response()
}

/// A document made of pieces sent one after another, never joined into one string: most of
/// DescribeInstances' answer is the instances' cached items, shared with the cache.
#[derive(Debug, Default)]
pub struct Pieces {
    parts: Vec<Piece>,
    len: usize,
}

/// One piece of a [`Pieces`] document.
#[derive(Debug)]
enum Piece {
    Shared(Arc<str>),
    Owned(String),
    Static(&'static str),
}

impl Piece {
    fn as_str(&self) -> &str {
        match self {
            Self::Shared(s) => s,
            Self::Owned(s) => s,
            Self::Static(s) => s,
        }
    }
}

/// How much of a [`Pieces`] document is copied into one body chunk: small enough to come from
/// the allocator's heap and be reused chunk after chunk (a whole 40 MB answer in one string
/// was fresh pages, faulted in and unmapped on every request), large enough that the chunks
/// are few.
const CHUNK: usize = 64 * 1024;

impl Pieces {
    /// Appends what a writer made.
    pub fn push_writer(&mut self, w: XmlWriter) {
        let text = w.finish();
        if !text.is_empty() {
            self.len += text.len();
            self.parts.push(Piece::Owned(text));
        }
    }

    /// Appends a shared fragment (a cached item) without copying it.
    pub fn push_shared(&mut self, xml: &Arc<str>) {
        self.len += xml.len();
        self.parts.push(Piece::Shared(Arc::clone(xml)));
    }

    /// Appends markup our code wrote.
    pub fn push_static(&mut self, xml: &'static str) {
        self.len += xml.len();
        self.parts.push(Piece::Static(xml));
    }

    /// The document's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the document is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole document as one string.
    pub fn concat(&self) -> String {
        let mut out = String::with_capacity(self.len);
        for part in &self.parts {
            out.push_str(part.as_str());
        }
        out
    }

    /// The document as body chunks, each made when the connection asks for it: a shared
    /// piece of [`SHARED_ALONE`] bytes or more is sent as it is (copying each instance's
    /// cached item into chunks was a sixth of a Describe of 10,000), the others are copied
    /// together into chunks of about [`CHUNK`] bytes.
    fn into_chunks(self) -> impl Iterator<Item = axum::body::Bytes> {
        let mut parts = self.parts.into_iter().peekable();
        std::iter::from_fn(move || {
            let first = parts.next()?;
            if let Piece::Shared(xml) = &first {
                if xml.len() >= SHARED_ALONE {
                    return Some(axum::body::Bytes::from_owner(SharedBytes(Arc::clone(xml))));
                }
            }
            let mut chunk = Vec::with_capacity(CHUNK + 8 * 1024);
            chunk.extend_from_slice(first.as_str().as_bytes());
            while chunk.len() < CHUNK {
                match parts.peek() {
                    None => break,
                    Some(Piece::Shared(xml)) if xml.len() >= SHARED_ALONE => break,
                    Some(_) => {}
                }
                let Some(part) = parts.next() else { break };
                chunk.extend_from_slice(part.as_str().as_bytes());
            }
            Some(axum::body::Bytes::from(chunk))
        })
    }
}

/// How large a shared piece is sent on its own rather than copied into a chunk.
const SHARED_ALONE: usize = 1024;

/// A shared piece as body bytes, without a copy.
struct SharedBytes(Arc<str>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Like [`success`], with members made of [`Pieces`], sent chunk by chunk as they are copied.
pub fn success_pieces(action: &str, request_id: &str, members: Pieces) -> Response {
    let (head, tail) = envelope_parts(action, request_id);
    let length = head.len() + members.len() + tail.len();
    let parts = std::iter::once(axum::body::Bytes::from(head))
        .chain(members.into_chunks())
        .chain(std::iter::once(axum::body::Bytes::from(tail)));
    ok_response(length, parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole document `success` sends: the envelope's ends around the members.
    fn envelope(action: &str, request_id: &str, members: &str) -> String {
        let (head, tail) = envelope_parts(action, request_id);
        [head.as_str(), members, tail.as_str()].concat()
    }

    #[test]
    fn escapes_markup_in_text() {
        let mut w = XmlWriter::new();
        w.field("value", "<a href=\"x\">&'</a>");
        assert_eq!(
            w.finish(),
            "<value>&lt;a href=\"x\"&gt;&amp;'&lt;/a&gt;</value>"
        );
    }

    #[test]
    fn replaces_characters_xml_cannot_carry() {
        assert_eq!(
            escape_text("a\u{0}b\u{1b}c\td\re"),
            "a\u{FFFD}b\u{FFFD}c\td&#xD;e"
        );
    }

    #[test]
    fn lists_are_item_sets() {
        let mut w = XmlWriter::new();
        w.set("instancesSet", ["i-1", "i-2"], |w, id| {
            w.field("instanceId", id)
        });
        w.empty("groupSet");
        assert_eq!(
            w.finish(),
            "<instancesSet><item><instanceId>i-1</instanceId></item><item><instanceId>i-2</instanceId></item></instancesSet><groupSet/>"
        );
    }

    #[test]
    fn plain_list_items_are_escaped_text() {
        let mut w = XmlWriter::new();
        w.set("securityGroupIdSet", ["sg-1", "<x>"], |w, id| w.text(id));
        assert_eq!(
            w.finish(),
            "<securityGroupIdSet><item>sg-1</item><item>&lt;x&gt;</item></securityGroupIdSet>"
        );
    }

    #[test]
    fn envelope_has_namespace_and_request_id_first() {
        let doc = envelope("DescribeRegions", "req-1", "<regionInfo/>");
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>req-1</requestId><regionInfo/></DescribeRegionsResponse>"
        );
    }

    #[test]
    fn pieces_are_sent_whole_and_in_order() {
        let mut pieces = Pieces::default();
        let shared: Arc<str> = "x".repeat(50_000).into();
        pieces.push_static("<a>");
        for _ in 0..5 {
            pieces.push_shared(&shared);
        }
        let mut w = XmlWriter::new();
        w.field("b", "<");
        pieces.push_writer(w);
        let whole = pieces.concat();
        assert_eq!(whole.len(), pieces.len());
        assert!(whole.starts_with("<a>xxx") && whole.ends_with("<b>&lt;</b>"));
        let chunks: Vec<_> = pieces.into_chunks().collect();
        // Each large shared piece goes as it is (no copy), the small ones around it alone.
        assert_eq!(chunks.len(), 7);
        assert_eq!(chunks[1].as_ptr(), shared.as_ptr());
        assert_eq!(chunks.concat(), whole.as_bytes());
    }

    #[test]
    fn small_pieces_are_joined_into_chunks() {
        let mut pieces = Pieces::default();
        let shared: Arc<str> = "y".repeat(100).into();
        for _ in 0..2_000 {
            pieces.push_static("<i>");
            pieces.push_shared(&shared);
        }
        let whole = pieces.concat();
        let chunks: Vec<_> = pieces.into_chunks().collect();
        assert_eq!(chunks.len(), whole.len().div_ceil(CHUNK));
        assert_eq!(chunks.concat(), whole.as_bytes());
    }

    #[test]
    fn optional_fields_are_omitted() {
        let mut w = XmlWriter::new();
        w.opt_field::<&str>("ipAddress", None);
        w.opt_field("privateIpAddress", Some("172.17.0.2"));
        assert_eq!(
            w.finish(),
            "<privateIpAddress>172.17.0.2</privateIpAddress>"
        );
    }
}
