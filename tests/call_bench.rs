//! Benchmarks of the whole call (issue 10 §8), run by `scripts/bench-call-sipp` (ignored in the
//! normal test run: they take minutes and measure, they do not assert figures):
//! turn latency and where it goes, concurrent calls held with live RTP both ways and
//! memory per call, calls per second through answer-greet-route at 0 failures.
mod common;

use std::time::{Duration, Instant};

use common::call::{build_pcap, have_model, run_sipp, scenario, CallServer, Ending, Expect, Turn};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn field(line: &str, key: &str) -> Option<f64> {
    let clean: String = strip_ansi(line);
    let i = clean.find(&format!("{key}="))?;
    clean[i + key.len() + 1..]
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()?
        .parse()
        .ok()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        if c == '\u{1b}' {
            esc = true;
        } else if esc {
            if c == 'm' {
                esc = false;
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
#[ignore]
fn bench_turn_latency() {
    if !common::sip::have_sipp("bench_turn_latency") || !have_model("bench_turn_latency") {
        return;
    }
    let server = CallServer::start(true, "  recognition_timeout_secs: 60", |t| t);
    let sentences = [
        (
            "cc_bill_01",
            "我想查一下这个月的信用卡账单。",
            "credit_card",
        ),
        (
            "cc_bill_02",
            "信用卡本期账单出来了吗，一共欠多少钱。",
            "credit_card",
        ),
        ("ac_report_01", "", "auto_claim"),
        ("ac_report_02", "", "auto_claim"),
        ("ac_prog_01", "", "auto_claim"),
        ("ac_prog_02", "", "auto_claim"),
        ("cc_bill_03", "", "credit_card"),
        ("ac_report_03", "", "auto_claim"),
    ];
    let mut ok = 0;
    for (i, (name, text, queue)) in sentences.iter().enumerate() {
        let pcap = server.dir.path().join(format!("s{i}.pcap"));
        build_pcap(
            &[
                Turn::Silence(3.0),
                Turn::Say { name, text },
                Turn::Silence(8.0),
            ],
            &pcap,
        );
        let end = Ending::Refer(Expect {
            queue,
            lane: "standard",
            ..Expect::default()
        });
        let sf = scenario(server.dir.path(), "13900001000", Some(&pcap), &end);
        if run_sipp(server.sip, &sf, 1).status.success() {
            ok += 1;
        }
    }
    let log = server.log();
    let mut turns: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("turn latency"))
        .filter_map(|l| field(l, "turn_ms"))
        .collect();
    let records = server.records();
    let mut asr: Vec<f64> = records
        .iter()
        .flat_map(|r| r["recognitions"].as_array().cloned().unwrap_or_default())
        .filter_map(|x| x["latency_ms"].as_f64())
        .collect();
    println!(
        "BENCH turn: calls={} routed={ok} turns={} endpoint_to_reply_ms p50={:.0} p95={:.0}; asr_ms p50={:.0} p95={:.0}",
        sentences.len(),
        turns.len(),
        pct(&mut turns, 0.5),
        pct(&mut turns, 0.95),
        pct(&mut asr, 0.5),
        pct(&mut asr, 0.95)
    );
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

#[test]
#[ignore]
fn bench_concurrent_calls_held() {
    if !common::sip::have_sipp("bench_concurrent_calls_held") {
        return;
    }
    let counts: Vec<usize> = std::env::var("BENCH_CALLS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 250, 500]);
    for n in counts {
        // Shipped speaking rate: the greeting and its no-input re-prompt outlast the hold.
        let server = CallServer::start(false, "  rtp_timeout_secs: 60", |t| {
            let t = t
                .replace("  rate: 320", "  rate: 160")
                .replace("max_calls_per_second: 400", "max_calls_per_second: 1000");
            let mut out = String::new();
            for l in t.lines() {
                if l.trim_start().starts_with("port_min:") {
                    out.push_str("  port_min: 40000\n");
                } else if l.trim_start().starts_with("port_max:") {
                    out.push_str("  port_max: 41998\n");
                } else {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            out
        });
        let pid = server.server.child.id();
        std::thread::sleep(Duration::from_secs(2));
        let idle = rss_kb(pid);
        let hold = 25.0;
        let pcap = server.dir.path().join("hold.pcap");
        build_pcap(&[Turn::Silence(hold)], &pcap);
        let sf = scenario(
            server.dir.path(),
            "13900002000",
            Some(&pcap),
            &Ending::HangUpAfter(Duration::from_secs_f64(hold)),
        );
        let target = server.sip;
        let nn = n;
        let started = Instant::now();
        let callers = std::thread::spawn(move || {
            let n = nn.to_string();
            common::sip::sipp_args(
                &[&target.to_string(), "-sf", common::sip::path_str(&sf)],
                &[
                    "-m",
                    &n,
                    "-l",
                    &n,
                    "-r",
                    "100",
                    "-timeout",
                    "120s",
                    "-max_recv_loops",
                    "100000",
                ],
            )
        });
        // Measure while all calls are up.
        let mut peak_active = 0.0f64;
        let mut rss = 0;
        let mut cpu = 0.0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !callers.is_finished() {
            let m = server.metrics();
            let active = m
                .lines()
                .find(|l| l.starts_with("voicenav_calls_active "))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .unwrap_or(0.0);
            if active >= n as f64 && peak_active < n as f64 {
                // All up: sample CPU over 5 s and memory.
                let t0 = cpu_ticks(pid);
                std::thread::sleep(Duration::from_secs(5));
                let t1 = cpu_ticks(pid);
                cpu = (t1 - t0) as f64 / 100.0 / 5.0;
                rss = rss_kb(pid);
            }
            peak_active = peak_active.max(active);
            std::thread::sleep(Duration::from_millis(250));
        }
        let out = callers.join().expect("sipp");
        let records = server.wait_records(n, Duration::from_secs(30));
        let complete = records
            .iter()
            .filter(|r| r["outcome"] == "abandoned")
            .count();
        println!(
            "BENCH hold: calls={n} all_up={} sipp_ok={} records_abandoned={complete} peak_active={peak_active} voicenav_cpu_cores={cpu:.2} rss_idle_mb={:.1} rss_mb={:.1} per_call_kb={:.0} took_s={:.0}",
            peak_active >= n as f64,
            out.status.success(),
            idle as f64 / 1024.0,
            rss as f64 / 1024.0,
            (rss.saturating_sub(idle)) as f64 / n as f64,
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
#[ignore]
fn bench_calls_per_second() {
    if !common::sip::have_sipp("bench_calls_per_second") {
        return;
    }
    let rates: Vec<usize> = std::env::var("BENCH_RATES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 20, 40]);
    let server = CallServer::start(false, "", |t| {
        let mut out = String::new();
        for l in t
            .replace("max_calls_per_second: 400", "max_calls_per_second: 1000")
            .lines()
        {
            if l.trim_start().starts_with("port_min:") {
                out.push_str("  port_min: 42000\n");
            } else if l.trim_start().starts_with("port_max:") {
                out.push_str("  port_max: 43998\n");
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    });
    let pcap = server.dir.path().join("press4.pcap");
    build_pcap(
        &[Turn::Silence(0.3), Turn::Key('4'), Turn::Silence(4.0)],
        &pcap,
    );
    let end = Ending::Refer(Expect {
        queue: "auto_claim",
        lane: "standard",
        ..Expect::default()
    });
    let sf = scenario(server.dir.path(), "13900003000", Some(&pcap), &end);
    let mut total = 0;
    for rate in rates {
        let calls = rate * 10;
        let r = rate.to_string();
        let m = calls.to_string();
        let started = Instant::now();
        let out = common::sip::sipp_args(
            &[&server.sip.to_string(), "-sf", common::sip::path_str(&sf)],
            &[
                "-m",
                &m,
                "-r",
                &r,
                "-l",
                "2000",
                "-timeout",
                "120s",
                "-max_recv_loops",
                "100000",
            ],
        );
        total += calls;
        let records = server.wait_records(total, Duration::from_secs(30));
        let routed = records
            .iter()
            .filter(|r| r["outcome"] == "transferred")
            .count();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let failed = stdout
            .lines()
            .find(|l| l.contains("Failed call"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        println!(
            "BENCH cps: rate={rate}/s calls={calls} sipp_ok={} routed_total={routed}/{total} {failed} took_s={:.1}",
            out.status.success(),
            started.elapsed().as_secs_f64()
        );
    }
}
