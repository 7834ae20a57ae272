//! Text after recognition: Simplified-Chinese output (zhconv, MediaWiki/OpenCC tables),
//! normalisation for scoring, character error rate, and the guards against Whisper's
//! known failure modes on the text side: looping repetitions, text recited from the
//! decoder prompt, and the stock phrases it invents on silence or noise (subtitle
//! credits learnt from its training data).

use zhconv::{zhconv, Variant};

/// Converts to Simplified Chinese (mainland forms) and trims.
pub fn to_simplified(text: &str) -> String {
    zhconv(text.trim(), Variant::ZhCN)
}

/// Text reduced to what a character error rate should compare: Simplified, no
/// punctuation or whitespace, ASCII letters lower-cased.
pub fn normalise_for_cer(text: &str) -> String {
    to_simplified(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance over `char`s.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// (edits, reference length) of `hyp` against `reference`, both normalised first.
pub fn cer_counts(reference: &str, hyp: &str) -> (usize, usize) {
    let r: Vec<char> = normalise_for_cer(reference).chars().collect();
    let h: Vec<char> = normalise_for_cer(hyp).chars().collect();
    (edit_distance(&r, &h), r.len())
}

/// Removes a phrase looping at the end or inside: any unit of 1..=12 characters repeated
/// back to back more than `max_repeats` times is cut to `max_repeats` copies. Returns the
/// text and whether anything was cut. (Mandarin legitimately doubles: 谢谢, 看看, 试一试试.)
pub fn collapse_repeats(text: &str, max_repeats: usize) -> (String, bool) {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    let mut cut = false;
    while i < chars.len() {
        let mut advanced = false;
        for unit in 1..=12usize {
            if i + unit * (max_repeats + 1) > chars.len() {
                break;
            }
            let pat = &chars[i..i + unit];
            let mut n = 1;
            while i + unit * (n + 1) <= chars.len()
                && &chars[i + unit * n..i + unit * (n + 1)] == pat
            {
                n += 1;
            }
            if n > max_repeats {
                for _ in 0..max_repeats {
                    out.extend_from_slice(pat);
                }
                i += unit * n;
                cut = true;
                advanced = true;
                break;
            }
        }
        if !advanced {
            out.push(chars[i]);
            i += 1;
        }
    }
    (out.into_iter().collect(), cut)
}

/// Whether `text` mostly recites `prompt`: a run of ≥ 6 characters (or the whole text
/// when shorter) found verbatim in the prompt and covering at least half of the text.
pub fn recites_prompt(text: &str, prompt: &str) -> bool {
    let t: Vec<char> = normalise_for_cer(text).chars().collect();
    let p = normalise_for_cer(prompt);
    if t.is_empty() || p.is_empty() {
        return false;
    }
    let mut covered = vec![false; t.len()];
    let min = 6.min(t.len());
    for start in 0..t.len() {
        let mut best = 0;
        for end in start + min..=t.len() {
            let s: String = t[start..end].iter().collect();
            if p.contains(&s) {
                best = end;
            } else {
                break;
            }
        }
        for c in covered.iter_mut().take(best).skip(start) {
            *c = true;
        }
    }
    covered.iter().filter(|c| **c).count() * 2 >= t.len()
}

/// Stock phrases Whisper produces on silence, music or noise (subtitle credits and sign-offs
/// from its training data). A hypothesis containing one is discarded.
const HALLUCINATIONS: &[&str] = &[
    "字幕",
    "订阅",
    "点赞",
    "打赏",
    "明镜",
    "谢谢观看",
    "感谢观看",
    "谢谢收看",
    "感谢收看",
    "请不吝",
    "amara",
    "中文字幕",
    "下集",
    "本期视频",
    "欢迎订阅",
    "yoyo",
    "独播剧场",
    "by索兰娅",
];

/// Whether the (normalised) text contains a known hallucination phrase.
pub fn is_known_hallucination(text: &str) -> bool {
    let n = normalise_for_cer(text);
    HALLUCINATIONS
        .iter()
        .any(|h| n.contains(&normalise_for_cer(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_becomes_simplified_and_punctuation_is_ignored_for_cer() {
        assert_eq!(to_simplified("信用卡帳單查詢"), "信用卡账单查询");
        assert_eq!(normalise_for_cer("我想查，帳單。 OK"), "我想查账单ok");
        assert_eq!(cer_counts("信用卡账单", "信用卡帳單"), (0, 5));
        assert_eq!(cer_counts("信用卡账单", "心用卡账"), (2, 5));
    }

    #[test]
    fn loops_are_cut_but_ordinary_doubling_survives() {
        assert_eq!(collapse_repeats("谢谢你", 2), ("谢谢你".to_string(), false));
        let (t, cut) = collapse_repeats("我要查账单我要查账单我要查账单我要查账单", 2);
        assert!(cut);
        assert_eq!(t, "我要查账单我要查账单");
        let (t, cut) = collapse_repeats("好的好的好的好的好的", 1);
        assert!(cut);
        assert_eq!(t, "好的");
    }

    #[test]
    fn prompt_recitation_is_detected() {
        let prompt = "以下是普通话的句子。信用卡账单查询，车险报案，转人工。";
        assert!(recites_prompt("以下是普通话的句子", prompt));
        assert!(recites_prompt("信用卡账单查询，车险报案", prompt));
        assert!(!recites_prompt("我想查一下信用卡的账单", prompt));
    }

    #[test]
    fn subtitle_credits_are_known_hallucinations() {
        assert!(is_known_hallucination(
            "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目"
        ));
        assert!(is_known_hallucination("字幕由Amara.org社区提供"));
        assert!(!is_known_hallucination("我要挂失银行卡"));
    }
}
