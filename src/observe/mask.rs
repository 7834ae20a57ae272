//! PII masking for everything voicenav writes down: logs, metric labels and call records.
//!
//! Three kinds of personal numbers are found in free text (recognised speech, transcripts,
//! caller ids) and replaced digit-for-digit with `*`:
//!
//! | kind | how it is recognised | what stays visible |
//! |---|---|---|
//! | bank card | 13–19 digits passing the Luhn check (ISO/IEC 7812-1 annex B) | last 4 |
//! | resident ID | 18 characters: 6-digit area, a real `YYYYMMDD` birth date, 3-digit sequence, check character by the ISO 7064 MOD 11-2 checksum of GB 11643-1999 | last 4 |
//! | mobile | `1[3-9]` + 9 digits, optionally after `86` / `0086` | first 3 (+ country code), last 4 |
//! | landline | area code `010`, `02x` or `0[3-9]xx` + 7–8 digit subscriber number | area code, last 4 |
//! | local number | 7–8 digits right after a phone word (电话/手机/号码/座机/拨打/致电) | last 4 |
//!
//! Digits may be ASCII, full-width (`１２３`) or Chinese numerals as a recogniser writes
//! spoken numbers (`幺三八…`, `零`/`〇`); groups may be split by single spaces or hyphens
//! (`6222 0212 3456 7890`, `020-8888-6666`). A run of groups is split greedily into the
//! longest pieces that are PII, so two numbers separated by a space are both found.
//!
//! Numbers that are not PII by these rules (amounts, dates, policy numbers failing the
//! checks, card-like runs failing Luhn) are left alone: masking them would make records
//! useless for QA, and the rules above are the ones the issue fixes. Old 15-digit IDs have
//! no checksum and are not recognised.

use std::borrow::Cow;
use std::fmt;

/// What kind of personal number a masked span was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiKind {
    Card,
    NationalId,
    Mobile,
    Landline,
    LocalPhone,
}

/// Replaces every personal number in `text` with `*` (see the module doc for the rules).
pub fn mask_pii(text: &str) -> String {
    mask_pii_cow(text).into_owned()
}

/// [`mask_pii`] without allocating when nothing needs masking.
pub fn mask_pii_cow(text: &str) -> Cow<'_, str> {
    let chars: Vec<char> = text.chars().collect();
    let spans = find_pii(&chars);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = chars;
    for span in spans {
        for &(idx, keep) in &span.positions {
            if !keep {
                out[idx] = '*';
            }
        }
    }
    Cow::Owned(out.into_iter().collect())
}

/// The kinds of personal numbers found in `text` (for tests and audits).
pub fn pii_kinds(text: &str) -> Vec<PiiKind> {
    let chars: Vec<char> = text.chars().collect();
    find_pii(&chars).into_iter().map(|s| s.kind).collect()
}

/// Masks a caller id (ANI) for records and logs. A SIP URI is reduced to its user part
/// first. A recognised phone number keeps its prefix and last 4 digits; any other id with
/// 5 or more digits keeps only its last 4 digits — an ANI is never written in the clear.
pub fn mask_ani(ani: &str) -> String {
    let user = ani_user_part(ani);
    let masked = mask_pii(user);
    if masked != user {
        return masked;
    }
    let digits = user.chars().filter(|c| c.is_ascii_digit()).count();
    // `*` means already masked: masking is idempotent.
    if digits < 5 || user.contains('*') {
        return masked;
    }
    let mut seen = 0;
    user.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if digits - seen < 4 {
                    c
                } else {
                    '*'
                }
            } else {
                c
            }
        })
        .collect()
}

/// The user part of a SIP/tel URI (`sip:+8613812345678@host;user=phone` → `+8613812345678`).
pub fn ani_user_part(ani: &str) -> &str {
    let s = ani.trim();
    let s = s
        .strip_prefix("sip:")
        .or_else(|| s.strip_prefix("sips:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    let s = s.split('@').next().unwrap_or(s);
    s.split(';').next().unwrap_or(s)
}

/// Displays a string with its PII masked: `tracing::info!(text = %Redacted(&text))`.
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_pii_cow(self.0))
    }
}

/// Luhn check over a string of ASCII digits (false for anything else or fewer than 2).
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The check character of the first 17 digits of a resident ID (GB 11643-1999).
pub fn national_id_check_char(first17: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(CHECK[(sum % 11) as usize])
}

/// Whether `id` (18 characters, last may be `X`/`x`) is a well-formed resident ID: area,
/// birth date and checksum.
pub fn national_id_valid(id: &str) -> bool {
    if id.len() != 18 || !id.is_ascii() {
        return false;
    }
    let (body, check) = id.split_at(17);
    let Some(expected) = national_id_check_char(body) else {
        return false;
    };
    if !check.eq_ignore_ascii_case(&expected.to_string()) {
        return false;
    }
    if body.starts_with('0') {
        return false;
    }
    let num = |r: std::ops::Range<usize>| body[r].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    (1900..=2099).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

// ---- finding spans ------------------------------------------------------------------

/// A found personal number: the character positions it covers (digits only; separators are
/// never masked) and whether each stays visible.
struct Span {
    kind: PiiKind,
    positions: Vec<(usize, bool)>,
}

/// A digit as written: its value and where it sits.
#[derive(Clone, Copy)]
struct Digit {
    idx: usize,
    value: char,
}

fn digit_value(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
        '零' | '〇' => Some('0'),
        '一' | '幺' => Some('1'),
        '二' => Some('2'),
        '三' => Some('3'),
        '四' => Some('4'),
        '五' => Some('5'),
        '六' => Some('6'),
        '七' => Some('7'),
        '八' => Some('8'),
        '九' => Some('9'),
        _ => None,
    }
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '\u{3000}' | '－')
}

/// Splits the text into runs of digit groups (groups joined by single separators).
fn digit_runs(chars: &[char]) -> Vec<Vec<Vec<Digit>>> {
    let mut runs = Vec::new();
    let mut groups: Vec<Vec<Digit>> = Vec::new();
    let mut group: Vec<Digit> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(v) = digit_value(c) {
            group.push(Digit { idx: i, value: v });
            // An ID's check character X follows its 17th digit directly.
        } else if matches!(c, 'X' | 'x') && group.len() == 17 && groups.is_empty() {
            group.push(Digit { idx: i, value: 'X' });
        } else if is_separator(c)
            && !group.is_empty()
            && chars.get(i + 1).is_some_and(|n| digit_value(*n).is_some())
        {
            groups.push(std::mem::take(&mut group));
        } else {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            if !groups.is_empty() {
                runs.push(std::mem::take(&mut groups));
            }
        }
        i += 1;
    }
    if !group.is_empty() {
        groups.push(group);
    }
    if !groups.is_empty() {
        runs.push(groups);
    }
    runs
}

fn find_pii(chars: &[char]) -> Vec<Span> {
    let mut spans = Vec::new();
    for run in digit_runs(chars) {
        let mut i = 0;
        while i < run.len() {
            let mut found = None;
            for j in (i..run.len()).rev() {
                let digits: Vec<Digit> = run[i..=j].iter().flatten().copied().collect();
                let preceded_by_phone_word = phone_word_before(chars, run[i][0].idx);
                if let Some(span) = classify(&digits, preceded_by_phone_word) {
                    found = Some((j, span));
                    break;
                }
            }
            match found {
                Some((j, span)) => {
                    spans.push(span);
                    i = j + 1;
                }
                None => i += 1,
            }
        }
    }
    spans
}

const PHONE_WORDS: [&str; 8] = [
    "电话",
    "手机",
    "号码",
    "座机",
    "拨打",
    "致电",
    "联系方式",
    "打",
];

/// Whether a phone word ends within the 4 characters before `idx` (skipping `是`, `：`…).
fn phone_word_before(chars: &[char], idx: usize) -> bool {
    let start = idx.saturating_sub(6);
    let before: String = chars[start..idx].iter().collect();
    let trimmed = before.trim_end_matches([' ', ':', '：', '是', '为', '，', ',']);
    PHONE_WORDS.iter().any(|w| trimmed.ends_with(w))
}

fn classify(digits: &[Digit], after_phone_word: bool) -> Option<Span> {
    let s: String = digits.iter().map(|d| d.value).collect();
    let n = s.len();
    let keep_last = |k: usize| -> Vec<(usize, bool)> {
        digits
            .iter()
            .enumerate()
            .map(|(i, d)| (d.idx, i + k >= n))
            .collect()
    };
    let keep_first_last = |f: usize, k: usize| -> Vec<(usize, bool)> {
        digits
            .iter()
            .enumerate()
            .map(|(i, d)| (d.idx, i < f || i + k >= n))
            .collect()
    };
    if n == 18 && national_id_valid(&s) {
        return Some(Span {
            kind: PiiKind::NationalId,
            positions: keep_last(4),
        });
    }
    if s.contains('X') {
        return None;
    }
    if let Some(cc) = mobile_prefix_len(&s) {
        return Some(Span {
            kind: PiiKind::Mobile,
            positions: keep_first_last(cc + 3, 4),
        });
    }
    if let Some(area) = landline_area_len(&s) {
        return Some(Span {
            kind: PiiKind::Landline,
            positions: keep_first_last(area, 4),
        });
    }
    if (13..=19).contains(&n) && luhn_valid(&s) {
        return Some(Span {
            kind: PiiKind::Card,
            positions: keep_last(4),
        });
    }
    if after_phone_word && (7..=8).contains(&n) && s.as_bytes()[0] >= b'2' {
        return Some(Span {
            kind: PiiKind::LocalPhone,
            positions: keep_last(4),
        });
    }
    None
}

/// For a mobile number (optionally with 86/0086), the length of its country-code prefix.
fn mobile_prefix_len(s: &str) -> Option<usize> {
    let is_mobile = |m: &str| {
        let b = m.as_bytes();
        m.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
    };
    if is_mobile(s) {
        Some(0)
    } else if s.len() == 13 && s.starts_with("86") && is_mobile(&s[2..]) {
        Some(2)
    } else if s.len() == 15 && s.starts_with("0086") && is_mobile(&s[4..]) {
        Some(4)
    } else {
        None
    }
}

/// For a landline number with its area code, the length of the area code.
fn landline_area_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 10 || b[0] != b'0' {
        return None;
    }
    let area = if s.starts_with("010") || b[1] == b'2' {
        3
    } else if (b'3'..=b'9').contains(&b[1]) {
        4
    } else {
        return None;
    };
    let subscriber = &b[area..];
    ((7..=8).contains(&subscriber.len()) && subscriber[0] >= b'2').then_some(area)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test numbers: a well-known Luhn-valid Visa test number, a UnionPay-style 19-digit
    // number made Luhn-valid, and a synthetic resident ID with a correct check character.
    const VISA: &str = "4111111111111111";

    fn luhn_complete(prefix: &str) -> String {
        (0..10)
            .map(|d| format!("{prefix}{d}"))
            .find(|s| luhn_valid(s))
            .unwrap()
    }

    fn id_complete(first17: &str) -> String {
        format!("{first17}{}", national_id_check_char(first17).unwrap())
    }

    #[test]
    fn luhn_accepts_and_rejects() {
        assert!(luhn_valid(VISA));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("41111a1111111111"));
        assert!(!luhn_valid("4"));
    }

    #[test]
    fn national_id_checksum_and_date() {
        // The GB 11643-1999 example number.
        assert!(national_id_valid("11010519491231002X"));
        assert!(national_id_valid("11010519491231002x"));
        assert!(!national_id_valid("110105194912310021"), "wrong check char");
        let bad_month = id_complete("11010519491331002");
        assert!(!national_id_valid(&bad_month), "month 13");
        assert!(!national_id_valid("1101051949123100"), "too short");
    }

    #[test]
    fn card_number_is_masked_keeping_last_four() {
        assert_eq!(
            mask_pii(&format!("卡号{VISA}谢谢")),
            "卡号************1111谢谢"
        );
        let unionpay = luhn_complete("622202123456789012");
        assert_eq!(unionpay.len(), 19);
        let masked = mask_pii(&unionpay);
        assert_eq!(&masked[..15], "***************");
        assert_eq!(&masked[15..], &unionpay[15..]);
        assert_eq!(pii_kinds(&unionpay), vec![PiiKind::Card]);
    }

    #[test]
    fn card_failing_luhn_is_left_alone() {
        assert_eq!(mask_pii("编号4111111111111112"), "编号4111111111111112");
    }

    #[test]
    fn grouped_card_keeps_separators() {
        assert_eq!(mask_pii("4111 1111 1111 1111"), "**** **** **** 1111");
        assert_eq!(mask_pii("4111-1111-1111-1111"), "****-****-****-1111");
    }

    #[test]
    fn national_id_is_masked_including_x() {
        assert_eq!(
            mask_pii("身份证11010519491231002X。"),
            "身份证**************002X。"
        );
        assert_eq!(pii_kinds("11010519491231002X"), vec![PiiKind::NationalId]);
        let id = id_complete("44030619900101123");
        assert_eq!(mask_pii(&id), format!("**************{}", &id[14..]));
    }

    #[test]
    fn id_with_bad_checksum_is_not_an_id() {
        // 18 digits, wrong check char, and not Luhn-valid either: left alone.
        let id = id_complete("44030619900101123");
        let last = id.chars().last().unwrap();
        let wrong = if last == '1' { '2' } else { '1' };
        let bad = format!("{}{wrong}", &id[..17]);
        if !luhn_valid(&bad) {
            assert_eq!(mask_pii(&bad), bad);
        }
    }

    #[test]
    fn mobile_numbers_keep_prefix_and_last_four() {
        assert_eq!(mask_pii("我的手机13812345678"), "我的手机138****5678");
        assert_eq!(mask_pii("+8613812345678"), "+86138****5678");
        assert_eq!(mask_pii("008619912345678"), "0086199****5678");
        assert_eq!(mask_pii("138-1234-5678"), "138-****-5678");
        assert_eq!(
            mask_pii("12812345678"),
            "12812345678",
            "12x is not a mobile prefix"
        );
    }

    #[test]
    fn landlines_keep_area_code_and_last_four() {
        assert_eq!(mask_pii("02088886666"), "020****6666");
        assert_eq!(mask_pii("020-88886666"), "020-****6666");
        assert_eq!(mask_pii("01062345678"), "010****5678");
        assert_eq!(mask_pii("07552345678"), "0755***5678");
        assert_eq!(mask_pii("075523456789"), "0755****6789");
        assert_eq!(pii_kinds("0571-87654321"), vec![PiiKind::Landline]);
    }

    #[test]
    fn local_number_only_after_a_phone_word() {
        assert_eq!(mask_pii("我家电话是88886666"), "我家电话是****6666");
        assert_eq!(mask_pii("转账88886666元"), "转账88886666元");
    }

    #[test]
    fn chinese_and_fullwidth_digits() {
        assert_eq!(mask_pii("幺三八一二三四五六七八"), "幺三八****五六七八");
        assert_eq!(mask_pii("１３８１２３４５６７８"), "１３８****５６７８");
    }

    #[test]
    fn two_numbers_separated_by_a_space_are_both_masked() {
        assert_eq!(
            mask_pii("13812345678 13912345678"),
            "138****5678 139****5678"
        );
        assert_eq!(
            mask_pii(&format!("{VISA} 13812345678")),
            "************1111 138****5678"
        );
    }

    #[test]
    fn ordinary_text_and_numbers_are_untouched() {
        for s in [
            "我想查一下信用卡账单",
            "我要还款5000元",
            "2024年3月15日出的事故",
            "保单号P2024031500123",
            "请按1",
            "九九八十一",
            "一一零",
            "",
        ] {
            assert_eq!(mask_pii(s), s);
            assert!(matches!(mask_pii_cow(s), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn ani_is_always_masked() {
        assert_eq!(
            mask_ani("sip:+8613812345678@10.0.0.1;user=phone"),
            "+86138****5678"
        );
        assert_eq!(mask_ani("02088886666"), "020****6666");
        assert_eq!(mask_ani("445566778899"), "********8899");
        assert_eq!(mask_ani("1001"), "1001");
        assert_eq!(mask_ani("anonymous"), "anonymous");
        for ani in ["13812345678", "02088886666", "445566778899"] {
            let once = mask_ani(ani);
            assert_eq!(mask_ani(&once), once, "idempotent");
        }
    }

    #[test]
    fn redacted_displays_masked() {
        assert_eq!(
            format!("{}", Redacted("call 13812345678")),
            "call 138****5678"
        );
    }

    proptest::proptest! {
        #[test]
        fn masking_keeps_length_and_never_panics(s in "\\PC{0,60}") {
            let m = mask_pii(&s);
            proptest::prop_assert_eq!(m.chars().count(), s.chars().count());
        }

        #[test]
        fn any_luhn_valid_card_is_masked(body in "[3-6][0-9]{11,17}", sep in proptest::sample::select(vec!["", " "])) {
            let card = luhn_complete(&body);
            let grouped: String = card
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(sep);
            let text = format!("卡号{grouped}，谢谢");
            let m = mask_pii(&text);
            let digits: String = m.chars().filter(|c| c.is_ascii_digit()).collect();
            proptest::prop_assert_eq!(&digits, &card[card.len() - 4..], "{} -> {}", text, m);
        }

        #[test]
        fn any_valid_national_id_is_masked(
            area in 110000u32..660000,
            year in 1930u32..2020,
            month in 1u32..=12,
            day in 1u32..=28,
            seq in 0u32..1000,
        ) {
            let id = id_complete(&format!("{area}{year}{month:02}{day:02}{seq:03}"));
            let m = mask_pii(&format!("身份证号{id}"));
            proptest::prop_assert_eq!(m, format!("身份证号**************{}", &id[14..]));
        }

        #[test]
        fn any_mobile_is_masked(rest in "[3-9][0-9]{9}", pre in "[a-z ]{0,3}", post in "[a-z ]{0,3}") {
            let number = format!("1{rest}");
            let text = format!("{pre}{number}{post}");
            let m = mask_pii(&text);
            proptest::prop_assert!(!m.contains(&number), "{} -> {}", text, m);
        }
    }
}
