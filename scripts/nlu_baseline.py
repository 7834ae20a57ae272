#!/usr/bin/env python3
"""scikit-learn baseline for the NLU benchmark: TF-IDF character 1-3-grams + LinearSVC,
trained on the same catalogue examples as voicenav's classifier (nlu-train.tsv written by
`cargo bench --bench nlu`) and scored on the same dev set with the same definitions as
src/nlu/eval.rs. Prints a markdown table comparing it with voicenav (nlu-bench.json)."""
import argparse
import csv
import json
import statistics
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

CORES = {
    "credit_card": ["bill_query", "repayment", "limit_adjust", "activation", "loss_report", "installment", "annual_fee", "points"],
    "bank_account": ["balance_query", "transfer_issue", "card_loss", "password_reset"],
    "loan": ["repayment_query", "application", "mortgage"],
    "wealth": ["product_query", "fund_redemption"],
    "auto_claim": ["accident_report", "claim_progress", "roadside_assistance"],
    "auto_policy": ["renewal", "quote", "policy_query"],
    "property_insurance": ["home_claim", "accident_insurance"],
    "life_policy": ["policy_query", "info_change", "premium_payment", "surrender", "beneficiary_change"],
    "life_claim": ["claim_report", "claim_progress"],
    "health": ["appointment", "online_consult"],
    "pension": ["annuity_query"],
    "securities": ["account_opening", "trading_issue"],
    "complaint": ["service_complaint"],
    "human_agent": ["request"],
}
CORE_IDS = {f"{q}.{s}" for q, ss in CORES.items() for s in ss}


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def core_of(s):
    for c in CORE_IDS:
        if s == c or s.startswith(c + "."):
            return c
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--ours", required=True)
    a = ap.parse_args()
    train = read_tsv(a.train)
    dev = read_tsv(a.dev)
    X = [r["text"] for r in train]
    y = [r["label"] for r in train]
    t0 = time.perf_counter()
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    clf = LinearSVC(C=1.0)
    clf.fit(vec.fit_transform(X), y)
    train_s = time.perf_counter() - t0

    # One utterance at a time, as a call would (latency and throughput on one core).
    lat = []
    preds = []
    for r in dev * 5:
        s = time.perf_counter()
        p = clf.predict(vec.transform([r["text"]]))[0]
        lat.append(time.perf_counter() - s)
        preds.append(p)
    preds = preds[: len(dev)]
    lat.sort()
    per_sec = len(lat) / sum(lat)
    p50 = lat[len(lat) // 2] * 1e6
    p99 = lat[int((len(lat) - 1) * 0.99)] * 1e6

    q_hit = q_tot = c_hit = c_tot = 0
    styles = {}
    for r, p in zip(dev, preds):
        exp_clarify = r["decision"] == "clarify"
        pred_clarify = p == "-"
        pq = None if pred_clarify else p.split(".")[0]
        if exp_clarify:
            ok = pred_clarify
        else:
            q_tot += 1
            q_hit += pq == r["queue"]
            if r["scenario"] in CORE_IDS:
                c_tot += 1
                c_hit += (core_of(p) or p) == r["scenario"]
            ok = pq == r["queue"] and (r["scenario"] == "-" or (core_of(p) or p) == (core_of(r["scenario"]) or r["scenario"]))
        h, t = styles.get(r["style"], (0, 0))
        styles[r["style"]] = (h + ok, t + 1)

    ours = json.load(open(a.ours, encoding="utf-8"))
    od = ours["dev"]

    def pc(h, t):
        return f"{100.0 * h / t:.1f}%" if t else "-"

    print()
    print("| measure | voicenav | scikit-learn TF-IDF + LinearSVC |")
    print("|---|---|---|")
    print(f"| classes / training examples | {ours['scenarios']} scenarios, {ours['training_examples']} first-stage examples | {len(set(y))} classes, {len(X)} examples |")
    print(f"| training (start-up) | {ours['train_ms_median']:.0f} ms (load + normalise + train) | {train_s * 1e3:.0f} ms (fit only) |")
    print(f"| utterances/s, one core, one at a time | {ours['utterances_per_sec_one_core']:.0f} | {per_sec:.0f} |")
    print(f"| latency p50 / p99 | {ours['latency_us_p50']:.1f} / {ours['latency_us_p99']:.1f} us | {p50:.0f} / {p99:.0f} us |")
    print(f"| memory added by loading | {ours['rss_kib_added_by_load'] / 1024:.1f} MiB | - |")
    print(f"| queue accuracy (dev) | {pc(od['queue']['hits'], od['queue']['total'])} | {pc(q_hit, q_tot)} |")
    print(f"| core-scenario accuracy (dev) | {pc(od['core']['hits'], od['core']['total'])} | {pc(c_hit, c_tot)} |")
    for s in sorted(styles):
        o = od["per_style"].get(s, {"hits": 0, "total": 0})
        print(f"| style {s} | {pc(o['hits'], o['total'])} | {pc(*styles[s])} |")
    print()
    print(f"throughput ratio voicenav / baseline: {ours['utterances_per_sec_one_core'] / per_sec:.1f}x")


if __name__ == "__main__":
    main()
