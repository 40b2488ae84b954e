//! The hand-written text encoder for per-target sample lines (checked byte for byte against
//! prometheus-client's encoder in the tests).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value {
    Int(i64),
    Float(f64),
}

/// Append `v` to `out` escaped as a label value (backslash, double quote, newline), cut to
/// [`MAX_LABEL_VALUE`] bytes first.
pub(super) fn push_label_value(out: &mut String, v: &str) {
    let v = truncated(v);
    let mut last = 0;
    for (i, b) in v.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(&v[last..i]);
        out.push_str(escaped);
        last = i + 1;
    }
    out.push_str(&v[last..]);
}

pub(super) fn push_label(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    push_label_value(out, value);
    out.push('"');
}

/// Append a sample value the way prometheus-client writes gauges: integers in decimal, floats
/// as the shortest representation that round-trips (`2.0`, `1.5e-5`), non-finite values as
/// `NaN`, `+Inf`, `-Inf`.
pub(super) fn push_value(out: &mut String, v: Value) {
    match v {
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(i)),
        Value::Float(f) if f.is_finite() => out.push_str(dtoa::Buffer::new().format_finite(f)),
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f > 0.0 => out.push_str("+Inf"),
        Value::Float(_) => out.push_str("-Inf"),
    }
}

/// Collects the sample lines of one target, per family.
pub(super) struct Lines {
    pub(super) fams: [String; NFAM],
}

impl Lines {
    pub(super) fn new() -> Self {
        Self {
            fams: std::array::from_fn(|_| String::new()),
        }
    }

    pub(super) fn push(&mut self, fam: Fam, labels: &[(&str, &str)], value: Value) {
        let t = &mut self.fams[fam as usize];
        for (k, v) in labels {
            t.push(',');
            push_label(t, k, v);
        }
        t.push_str("} ");
        push_value(t, value);
        t.push('\n');
    }

    pub(super) fn finish(self) -> (Box<str>, [u32; NFAM + 1]) {
        let mut tails = String::with_capacity(self.fams.iter().map(String::len).sum());
        let mut offsets = [0u32; NFAM + 1];
        for (f, text) in self.fams.iter().enumerate() {
            tails.push_str(text);
            offsets[f + 1] = u32::try_from(tails.len()).unwrap_or(u32::MAX);
        }
        (tails.into_boxed_str(), offsets)
    }
}
