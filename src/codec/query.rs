//! URL query components as Go's `net/url` reads and writes them: `+` is a
//! space, `%XX` a byte, and `QueryEscape` keeps only unreserved bytes.
//! Both the receiver (reading `name=`) and the writer (rebuilding it) use
//! this, so the two sides cannot disagree.

use std::borrow::Cow;

/// Decodes a query component; `None` on a malformed `%` escape (Go's
/// `url.ParseQuery` then skips the pair). Borrows when nothing is escaped,
/// which is the common case on the request path.
pub fn unescape(s: &str) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let high = hex_value(*bytes.get(i + 1)?)?;
                let low = hex_value(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    })
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The first value of `key` in a query, decoded as `url.ParseQuery` does
/// (a pair with a bad escape or a `;` is skipped).
pub fn value<'a>(query: &'a str, key: &str) -> Option<Cow<'a, str>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if unescape(k)? != key {
                return None;
            }
            unescape(v)
        })
}

/// Appends Go's `url.QueryEscape(s)` to `out`: runs of unreserved bytes
/// are copied whole, the rest escaped one by one.
pub fn escape_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    if let [b] = *bytes
        && !is_unreserved(b)
        && b != b' '
    {
        // The separators of a normalized name (`{`, `=`, `,`, `}`).
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
        return;
    }
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_unreserved(b) {
            continue;
        }
        // A non-empty run holds only ASCII and ends before an ASCII byte
        // or the first byte of a character: both ends are char boundaries.
        if run < i {
            out.push_str(&s[run..i]);
        }
        run = i + 1;
        if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    if run < bytes.len() {
        out.push_str(&s[run..]);
    }
}

fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// `[A-Za-z0-9-_.~]`, by byte value: one load per byte on the hot path.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    table
};

/// Go's `url.QueryEscape`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            escape("app.cpu{a=b, c=d/e}"),
            "app.cpu%7Ba%3Db%2C+c%3Dd%2Fe%7D"
        );
        assert_eq!(escape("~-_.AZaz09"), "~-_.AZaz09");
        assert_eq!(escape("é"), "%C3%A9");
        assert_eq!(escape("aé b€"), "a%C3%A9+b%E2%82%AC");
        assert_eq!(escape("é~"), "%C3%A9~");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn unescapes_and_borrows_when_it_can() {
        assert!(matches!(unescape("plain"), Some(Cow::Borrowed("plain"))));
        assert_eq!(unescape("%41%4a+b").unwrap(), "AJ b");
        assert_eq!(unescape("a%2"), None);
        assert_eq!(unescape("%"), None);
        assert_eq!(unescape("%zz"), None);
        assert_eq!(unescape("%ff").unwrap(), "\u{fffd}");
    }

    #[test]
    fn values_decode_like_go() {
        let q = "from=1&name=app%7Benv%3Dprod%7D&name=second&x=a+b";
        assert_eq!(value(q, "name").as_deref(), Some("app{env=prod}"));
        assert_eq!(value(q, "x").as_deref(), Some("a b"));
        assert_eq!(value(q, "missing"), None);
        assert_eq!(value("name=%zz&name=ok", "name").as_deref(), Some("ok"));
        assert_eq!(value("name", "name").as_deref(), Some(""));
        assert_eq!(value("name=%+1", "name"), None);
        assert_eq!(value("a=1;name=x", "name"), None);
        assert_eq!(value("na%6De=x", "name").as_deref(), Some("x"));
    }
}
