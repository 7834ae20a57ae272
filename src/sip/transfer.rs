//! Transfer with context (ARCHITECTURE.md "Transfer with context", RFC 3515 REFER,
//! RFC 3420 message/sipfrag NOTIFY bodies, RFC 7433 User-to-User): the one function that
//! turns a [`TransferContext`] into the REFER's headers, and the reading of NOTIFY
//! progress.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::routing::TransferContext;

/// Characters kept as-is in URL-encoded values (RFC 3986 unreserved).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, VALUE).to_string()
}

/// The context headers of a transfer: `X-Voicenav-Queue`, `-Scenario`, `-Confidence`,
/// `-Transcript` (URL-encoded), `-Call-Id`, `-Lane`, `-Dialect`, and `User-to-User`
/// carrying the same fields as a URL-encoded query string, hex-encoded (RFC 7433
/// `encoding=hex`) for trunks that pass only UUI.
pub fn transfer_headers(ctx: &TransferContext) -> Vec<(String, String)> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(q) = ctx.queue {
        fields.push(("Queue", q.as_str().to_string()));
    }
    if let Some(s) = &ctx.scenario {
        fields.push(("Scenario", s.clone()));
    }
    if let Some(c) = ctx.confidence {
        fields.push(("Confidence", format!("{c:.2}")));
    }
    fields.push(("Transcript", enc(&ctx.transcript)));
    fields.push(("Call-Id", ctx.call_id.clone()));
    fields.push(("Lane", ctx.lane.as_str().to_string()));
    if let Some(d) = &ctx.dialect {
        fields.push(("Dialect", d.clone()));
    }
    let mut out: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (format!("X-Voicenav-{k}"), v.clone()))
        .collect();
    let uui: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            // The transcript is already URL-encoded; the others are encoded here.
            let v = if *k == "Transcript" {
                v.clone()
            } else {
                enc(v)
            };
            format!("{}={v}", k.to_ascii_lowercase())
        })
        .collect();
    out.push((
        "User-to-User".into(),
        format!("{};encoding=hex", hex::encode(uui.join("&"))),
    ));
    out
}

/// Decodes our `User-to-User` value back into `key=value` pairs (used by tests and the
/// caller simulator).
pub fn decode_uui(value: &str) -> Option<Vec<(String, String)>> {
    let data = value.split(';').next()?.trim();
    let bytes = hex::decode(data).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(
        text.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
            .collect(),
    )
}

/// The status code of a `message/sipfrag` NOTIFY body (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|c| (100..700).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{Lane, Queue};

    #[test]
    fn headers_carry_the_context_and_uui_decodes() {
        let ctx = TransferContext {
            queue: Some(Queue::CreditCard),
            scenario: Some("credit_card.bill_query".into()),
            confidence: Some(0.934),
            transcript: "我想查一下信用卡账单".into(),
            call_id: "abc@host".into(),
            lane: Lane::Elderly,
            dialect: Some("yue".into()),
        };
        let h = transfer_headers(&ctx);
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Voicenav-Queue"), Some("credit_card"));
        assert_eq!(get("X-Voicenav-Confidence"), Some("0.93"));
        assert_eq!(get("X-Voicenav-Lane"), Some("elderly"));
        let t = get("X-Voicenav-Transcript").unwrap();
        assert!(t.starts_with("%E6%88%91"), "{t}");
        assert!(t.is_ascii());
        let uui = decode_uui(get("User-to-User").unwrap()).unwrap();
        assert!(uui.contains(&("transcript".into(), "我想查一下信用卡账单".into())));
        assert!(uui.contains(&("call-id".into(), "abc@host".into())));
        assert!(uui.contains(&("dialect".into(), "yue".into())));
    }

    #[test]
    fn sipfrag() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 486 Busy Here"), Some(486));
        assert_eq!(sipfrag_status(b"garbage"), None);
    }
}
