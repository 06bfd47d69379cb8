//! Structured input generators: JSON trees of protocol words, Token04s made of parts, TOML
//! files of known keys. Each reads its choices from `arbitrary::Unstructured`.

use arbitrary::Unstructured;
use base64::Engine as _;

fn word<'a>(u: &mut Unstructured<'_>, dict: &[&'a [u8]]) -> &'a [u8] {
    if dict.is_empty() {
        return b"x";
    }
    dict[u.choose_index(dict.len()).unwrap_or(0)]
}

fn json_scalar(u: &mut Unstructured<'_>, dict: &[&'static [u8]], out: &mut String) {
    match u.int_in_range(0..=6u8).unwrap_or(0) {
        0 => out.push_str("null"),
        1 => out.push_str(if u.arbitrary().unwrap_or(false) {
            "true"
        } else {
            "false"
        }),
        2 => out.push_str(&u.arbitrary::<i64>().unwrap_or(0).to_string()),
        3 => out.push_str(&u.arbitrary::<u64>().unwrap_or(0).to_string()),
        4 => {
            let f: f64 = u.arbitrary().unwrap_or(0.0);
            out.push_str(&serde_json::to_string(&f).unwrap_or_else(|_| "0.5".into()));
        }
        5 => {
            let s: String = u.arbitrary().unwrap_or_default();
            out.push_str(&serde_json::to_string(&s).unwrap_or_default());
        }
        _ => {
            let w = String::from_utf8_lossy(word(u, dict)).into_owned();
            out.push_str(&serde_json::to_string(&w).unwrap_or_default());
        }
    }
}

fn json_value(u: &mut Unstructured<'_>, dict: &[&'static [u8]], depth: u8, out: &mut String) {
    let kind = if depth == 0 {
        0
    } else {
        u.int_in_range(0..=3u8).unwrap_or(0)
    };
    match kind {
        0 | 1 => json_scalar(u, dict, out),
        2 => {
            out.push('[');
            let n = u.int_in_range(0..=5u8).unwrap_or(0);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                json_value(u, dict, depth - 1, out);
            }
            out.push(']');
        }
        _ => json_object(u, dict, depth - 1, out),
    }
}

fn json_object(u: &mut Unstructured<'_>, dict: &[&'static [u8]], depth: u8, out: &mut String) {
    out.push('{');
    let n = u.int_in_range(0..=8u8).unwrap_or(0);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let key = String::from_utf8_lossy(word(u, dict)).into_owned();
        out.push_str(&serde_json::to_string(&key).unwrap_or_default());
        out.push(':');
        json_value(u, dict, depth, out);
    }
    out.push('}');
}

/// A JSON object whose keys (and some string values) come from the dictionary.
pub fn json(u: &mut Unstructured<'_>, dict: &[&'static [u8]]) -> Vec<u8> {
    let mut out = String::new();
    json_object(u, dict, 3, &mut out);
    out.into_bytes()
}

/// A Token04 made of parts: prefix, expiry, nonce length and nonce, ciphertext length and
/// bytes, mode byte, each chosen to be right or wrong.
pub fn token(u: &mut Unstructured<'_>, _dict: &[&'static [u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let expire: i64 = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => 1_700_000_000 + i64::from(u.arbitrary::<u32>().unwrap_or(0)),
        1 => u.arbitrary().unwrap_or(0),
        _ => i64::MAX,
    };
    bytes.extend_from_slice(&expire.to_be_bytes());
    let nonce_len: u16 = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => 12,
        1 => 16,
        _ => u.arbitrary().unwrap_or(0),
    };
    let cut = u.arbitrary::<bool>().unwrap_or(false);
    bytes.extend_from_slice(&nonce_len.to_be_bytes());
    let real_nonce = usize::from(nonce_len).min(64);
    for _ in 0..real_nonce {
        bytes.push(u.arbitrary().unwrap_or(0));
    }
    let ct: Vec<u8> = u.arbitrary().unwrap_or_default();
    let ct_len: u16 = if u.ratio(1, 4).unwrap_or(false) {
        u.arbitrary().unwrap_or(0)
    } else {
        u16::try_from(ct.len()).unwrap_or(u16::MAX)
    };
    bytes.extend_from_slice(&ct_len.to_be_bytes());
    bytes.extend_from_slice(&ct);
    if nonce_len == 12 || u.ratio(1, 8).unwrap_or(false) {
        bytes.push(u.int_in_range(0..=2u8).unwrap_or(1));
    }
    if cut && !bytes.is_empty() {
        let keep = u.choose_index(bytes.len()).unwrap_or(0);
        bytes.truncate(keep);
    }
    let prefix = match u.int_in_range(0..=5u8).unwrap_or(0) {
        0 => "03",
        1 => "",
        _ => "04",
    };
    let mut token = prefix.to_owned();
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut token);
    token.into_bytes()
}

fn toml_value(u: &mut Unstructured<'_>, dict: &[&'static [u8]], out: &mut String) {
    match u.int_in_range(0..=6u8).unwrap_or(0) {
        0 => out.push_str(&u.arbitrary::<i64>().unwrap_or(0).to_string()),
        1 => out.push_str(if u.arbitrary().unwrap_or(false) {
            "true"
        } else {
            "false"
        }),
        2 => {
            let s: String = u.arbitrary().unwrap_or_default();
            out.push_str(&format!("{s:?}"));
        }
        3 => {
            let w = String::from_utf8_lossy(word(u, dict)).into_owned();
            out.push_str(&format!("{w:?}"));
        }
        4 => out.push_str(&format!("\"{}ms\"", u.arbitrary::<u32>().unwrap_or(0))),
        5 => {
            out.push('[');
            let n = u.int_in_range(0..=3u8).unwrap_or(0);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                toml_value(u, dict, out);
            }
            out.push(']');
        }
        _ => {
            let k = String::from_utf8_lossy(word(u, dict)).into_owned();
            out.push_str(&format!(
                "{{ {k} = {} }}",
                u.arbitrary::<i32>().unwrap_or(0)
            ));
        }
    }
}

/// A TOML file of `[section]`, `[[array]]` and `key = value` lines from the dictionary.
pub fn toml(u: &mut Unstructured<'_>, dict: &[&'static [u8]]) -> Vec<u8> {
    let mut out = String::new();
    let lines = u.int_in_range(1..=24u8).unwrap_or(1);
    for _ in 0..lines {
        let k = String::from_utf8_lossy(word(u, dict)).into_owned();
        match u.int_in_range(0..=5u8).unwrap_or(0) {
            0 => out.push_str(&format!("[{k}]\n")),
            1 => out.push_str(&format!("[[{k}]]\n")),
            _ => {
                out.push_str(&k);
                out.push_str(" = ");
                toml_value(u, dict, &mut out);
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}
