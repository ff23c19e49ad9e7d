//! Go's canonical JSON: what `encoding/json.Marshal` writes for a value that `json.Unmarshal` decoded into `any`.
//!
//! The Go operator hashes every framework parameter in this form (`canonicalJSONOrRaw`), so this encoder must be
//! byte-exact with Go (1.22 and later):
//! - objects with keys sorted bytewise, no whitespace;
//! - every number is a `float64`, written like `encoding/json`'s float encoder: the shortest representation that
//!   round-trips, in `strconv` `'f'` format, or `'e'` format when the magnitude is below `1e-6` or at least `1e21`,
//!   with a one-digit negative exponent cleaned up (`1e-07` -> `1e-7`);
//! - strings with `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t` escaped as such, other control characters and `<`, `>`,
//!   `&` as `\u00XX`, and U+2028/U+2029 as `\u2028`/`\u2029`. (Go replaces invalid UTF-8 with `\ufffd`; a Rust
//!   string is always valid UTF-8, so that case cannot arise.)

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// Where encoded bytes go: the hasher, or a buffer.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The canonical JSON of `value` as a string (see the module documentation).
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_value(&mut out, value);
    // The encoder writes whole UTF-8 sequences of valid input plus ASCII, so this never replaces anything.
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn write_value(out: &mut impl Sink, value: &Value) {
    match value {
        Value::Null => out.put(b"null"),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.put(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                write_value(out, item);
            }
            out.put(b"]");
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut impl Sink, map: &Map<String, Value>) {
    out.put(b"{");
    // serde_json's map is a BTreeMap (sorted) unless its `preserve_order` feature is on; sort only when needed.
    let sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b);
    if sorted {
        write_entries(out, map.iter());
    } else {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write_entries(out, entries.into_iter());
    }
    out.put(b"}");
}

fn write_entries<'a>(out: &mut impl Sink, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.put(b",");
        }
        write_string(out, key);
        out.put(b":");
        write_value(out, value);
    }
}

fn write_number(out: &mut impl Sink, n: &Number) {
    match n.as_f64() {
        Some(f) => write_f64(out, f),
        // Only reachable with serde_json's `arbitrary_precision` and a number beyond f64: Go would fail to decode
        // it and hash the raw text, which is what is written here.
        None => out.put(n.to_string().as_bytes()),
    }
}

/// A small stack buffer for number formatting, so hashing does not allocate per number.
struct NumberBuf {
    bytes: [u8; 40],
    len: usize,
}

impl std::fmt::Write for NumberBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Go `encoding/json`'s float64 encoder (NaN and infinities cannot occur in a `serde_json::Value`).
pub(crate) fn write_f64(out: &mut impl Sink, f: f64) {
    let mut buf = NumberBuf {
        bytes: [0; 40],
        len: 0,
    };
    let abs = f.abs();
    let exponent_form = abs != 0.0 && !(1e-6..1e21).contains(&abs);
    // Rust's `{}` and `{:e}` print the shortest digits that round-trip, as Go's `strconv.AppendFloat(f, _, -1, 64)`.
    let formatted = if exponent_form {
        write!(buf, "{f:e}")
    } else {
        write!(buf, "{f}")
    };
    if formatted.is_err() {
        // Unreachable: 40 bytes hold any shortest f64 in either form. Fall back to an allocation, never panic.
        let s = if exponent_form {
            format!("{f:e}")
        } else {
            format!("{f}")
        };
        return write_go_exponent(out, s.as_bytes(), exponent_form);
    }
    let written = buf.bytes.get(..buf.len).unwrap_or_default();
    write_go_exponent(out, written, exponent_form);
}

/// Rust writes `1e21` / `1e-7`; Go writes `1e+21` / `1e-7` (after its `e-07` -> `e-7` cleanup).
fn write_go_exponent(out: &mut impl Sink, formatted: &[u8], exponent_form: bool) {
    match formatted.iter().position(|&b| b == b'e') {
        Some(e) if exponent_form && formatted.get(e + 1) != Some(&b'-') => {
            let (mantissa, exponent) = formatted.split_at(e + 1);
            out.put(mantissa);
            out.put(b"+");
            out.put(exponent);
        }
        _ => out.put(formatted),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Go's `htmlSafeSet`: ASCII that is written as is when HTML escaping is on.
const fn html_safe_table() -> [bool; 128] {
    let mut table = [false; 128];
    let mut b = 0x20;
    while b < 128 {
        table[b] = !matches!(b as u8, b'"' | b'\\' | b'<' | b'>' | b'&');
        b += 1;
    }
    table
}

static HTML_SAFE: [bool; 128] = html_safe_table();

pub(crate) fn write_string(out: &mut impl Sink, s: &str) {
    let bytes = s.as_bytes();
    out.put(b"\"");
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if HTML_SAFE[usize::from(b)] {
                i += 1;
                continue;
            }
            out.put(&bytes[start..i]);
            match b {
                b'\\' | b'"' => out.put(&[b'\\', b]),
                0x08 => out.put(b"\\b"),
                0x0c => out.put(b"\\f"),
                b'\n' => out.put(b"\\n"),
                b'\r' => out.put(b"\\r"),
                b'\t' => out.put(b"\\t"),
                _ => out.put(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]),
            }
            i += 1;
            start = i;
            continue;
        }
        // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
        if b == 0xe2
            && bytes.get(i + 1) == Some(&0x80)
            && let Some(&last @ (0xa8 | 0xa9)) = bytes.get(i + 2)
        {
            out.put(&bytes[start..i]);
            out.put(if last == 0xa8 { b"\\u2028" } else { b"\\u2029" });
            i += 3;
            start = i;
            continue;
        }
        i += 1;
    }
    out.put(&bytes[start..]);
    out.put(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(text: &str) -> String {
        canonical_json(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn numbers_are_float64_in_go_format() {
        for (input, expected) in [
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("0.0000012345", "0.0000012345"),
            ("100", "100"),
            ("-0", "-0"),
            ("-0.0", "-0"),
            ("0", "0"),
            ("0.1", "0.1"),
            ("1.5e300", "1.5e+300"),
            ("-1.25e-10", "-1.25e-10"),
            ("1e-100", "1e-100"),
            ("12345678901234567890", "12345678901234567000"),
            ("9007199254740993", "9007199254740992"),
            ("-9223372036854775808", "-9223372036854776000"),
            ("999999999999999999999", "1e+21"),
            ("123e-20", "1.23e-18"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ] {
            assert_eq!(number(input), expected, "{input}");
        }
    }

    #[test]
    fn strings_escape_like_go_with_html_escaping() {
        assert_eq!(canonical_json(&json!("<a&b>")), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(canonical_json(&json!("\u{2028}x\u{2029}")), r#""\u2028x\u2029""#);
        assert_eq!(
            canonical_json(&json!("\u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}")),
            "\"\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\u{7f}\""
        );
        assert_eq!(canonical_json(&json!("\"\\/")), r#""\"\\/""#);
        assert_eq!(
            canonical_json(&json!("héllo ☃ 😀 \u{fffd} \u{2027}")),
            "\"héllo ☃ 😀 \u{fffd} \u{2027}\""
        );
    }

    #[test]
    fn containers_sort_keys_and_have_no_spaces() {
        let v = json!({"b": 1, "a": {"y": [1, "x", null], "x": true}, "B": false, "é": 0, "<": ">"});
        assert_eq!(
            canonical_json(&v),
            r#"{"\u003c":"\u003e","B":false,"a":{"x":true,"y":[1,"x",null]},"b":1,"é":0}"#
        );
        assert_eq!(canonical_json(&json!([{}, [], ""])), r#"[{},[],""]"#);
        assert_eq!(canonical_json(&Value::Null), "null");
    }
}
