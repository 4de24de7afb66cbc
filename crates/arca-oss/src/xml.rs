//! XML in and out. Responses are written with a small builder (exact element
//! order, no surprises); request bodies are read into a tiny tree with a
//! lenient parser: clients send raw control characters in keys (oss2 builds
//! its Delete body with ElementTree, which does not escape `\x0C`).

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Builds an XML document.
pub struct XmlWriter(String);

impl Default for XmlWriter {
    fn default() -> Self {
        XmlWriter(String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"))
    }
}

impl XmlWriter {
    /// Opens `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.0.push('<');
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// Closes `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// `<tag>text</tag>` with the text escaped.
    pub fn elem(&mut self, tag: &str, text: impl AsRef<str>) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.0, text.as_ref());
        self.close(tag)
    }

    /// Adds `<tag>text</tag>` only when `text` is `Some`.
    pub fn elem_opt(&mut self, tag: &str, text: Option<impl AsRef<str>>) -> &mut Self {
        if let Some(t) = text {
            self.elem(tag, t);
        }
        self
    }

    /// The document.
    pub fn finish(self) -> String {
        self.0
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// An element of a parsed request body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element {
    /// Tag name (without namespace prefix handling).
    pub name: String,
    /// Concatenated text content.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

impl Element {
    /// First child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child named `name`, trimmed.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// Parses a document into its root element; `None` if it is not well-formed.
pub fn parse(body: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                stack.push(Element { name, ..Default::default() });
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_owned();
                let el = Element { name, ..Default::default() };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(e) => {
                let el = stack.pop()?;
                if e.name().as_ref() != el.name.as_str() {
                    return None;
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t);
                } else if !t.trim().is_empty() {
                    return None;
                }
            }
            Event::CData(t) => {
                let s: &str = t.as_ref();
                let s = s.to_owned();
                stack.last_mut()?.text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().ok()??
                } else {
                    match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => return None,
                    }
                };
                stack.last_mut()?.text.push(c);
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return None;
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped() {
        let mut w = XmlWriter::default();
        w.open("A").elem("K", "a<b&\"c\"").close("A");
        assert!(w.finish().ends_with("<A><K>a&lt;b&amp;&quot;c&quot;</K></A>"));
    }

    #[test]
    fn parses_lenient_tree() {
        let doc = "<?xml version=\"1.0\"?><Delete><Quiet>true</Quiet><Object><Key>a&amp;b\x0c-2.txt</Key></Object><Object><Key>&#20013;</Key></Object><Empty/></Delete>";
        let root = parse(doc.as_bytes()).unwrap();
        assert_eq!(root.name, "Delete");
        assert_eq!(root.child_text("Quiet"), Some("true"));
        let keys: Vec<&str> = root.children_named("Object").map(|o| o.child("Key").unwrap().text.as_str()).collect();
        assert_eq!(keys, vec!["a&b\x0c-2.txt", "中"]);
        assert!(root.child("Empty").is_some());
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse(b"<A><B></A>").is_none());
        assert!(parse(b"<A>").is_none());
        assert!(parse(b"not xml").is_none());
        assert!(parse(b"").is_none());
    }
}
