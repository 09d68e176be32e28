//! `profile check`, `explain` and `tune` as the CLI prints them, plus the
//! property that validation never accepts a profile whose simulated worst
//! case overruns its budget.

use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use voxguard::config::Config;
use voxguard::config::profile_cli::{
    LatencySample, SampleOutcome, check, explain, tune, write_jsonl,
};

#[allow(clippy::too_many_arguments)] // one argument per profile field keeps call sites readable
fn profile_toml(
    budget: u64,
    timeout: u64,
    attempts: u32,
    kind: &str,
    base: u64,
    cap: u64,
    filler: u64,
    slow: u64,
) -> String {
    format!(
        "[llm]\nprofile = \"p\"\n[profiles.p]\nbudget = \"{budget}ms\"\nattempt_timeout = \"{timeout}ms\"\nmax_attempts = {attempts}\n\
         backoff = {{ kind = \"{kind}\", base = \"{base}ms\", cap = \"{cap}ms\" }}\nfiller_after = \"{filler}ms\"\n\
         filler_repeat = \"1s\"\nfiller_max = 2\nslow_call_threshold = \"{slow}ms\"\n"
    )
}

/// Runs a call where every attempt times out, with backoff sleeps drawn the
/// way each jitter kind draws them (or at their largest when `rng` is None),
/// and returns when the failure is known, in milliseconds.
fn simulate_all_timeouts(
    timeout: u64,
    attempts: u32,
    kind: &str,
    base: u64,
    cap: u64,
    mut rng: Option<&mut SmallRng>,
) -> u64 {
    let mut now = 0;
    let mut previous_sleep = base;
    for attempt in 0..attempts {
        if attempt > 0 {
            let sleep = if kind == "full" {
                let ceiling = cap.min(base.saturating_mul(1u64 << (attempt - 1).min(32)));
                rng.as_deref_mut()
                    .map_or(ceiling, |r| r.random_range(0..=ceiling))
            } else {
                let ceiling = previous_sleep.saturating_mul(3).max(base);
                cap.min(
                    rng.as_deref_mut()
                        .map_or(ceiling, |r| r.random_range(base..=ceiling)),
                )
            };
            previous_sleep = sleep;
            now += sleep;
        }
        now += timeout;
    }
    now
}

proptest! {
    #[test]
    fn every_accepted_profile_resolves_within_its_budget(
        timeout in 50u64..3000,
        attempts in 1u32..5,
        full in any::<bool>(),
        base in 1u64..400,
        cap in 1u64..1500,
        slack in -1500i64..3000,
        filler in 50u64..4000,
        slow in 10u64..3000,
        seed in any::<u64>(),
    ) {
        let kind = if full { "full" } else { "decorrelated" };
        let nominal = timeout * attempts as u64 + cap * (attempts as u64 - 1);
        let budget = (nominal as i64 + slack).max(1) as u64;
        let text = profile_toml(budget, timeout, attempts, kind, base, cap, filler, slow);
        let accepted = Config::from_toml(&text, "prop.toml").is_ok();
        if worst_with_capped_sleeps(timeout, attempts, cap) > budget {
            prop_assert!(!accepted, "a profile whose sleeps may all reach the cap overruns its budget, yet it was accepted\n{text}");
        }
        if accepted {
            let worst = simulate_all_timeouts(timeout, attempts, kind, base, cap, None);
            prop_assert!(worst <= budget, "accepted, yet the worst case takes {worst}ms > {budget}ms\n{text}");
            let mut rng = SmallRng::seed_from_u64(seed);
            for _ in 0..20 {
                let jittered = simulate_all_timeouts(timeout, attempts, kind, base, cap, Some(&mut rng));
                prop_assert!(jittered <= budget, "a jittered run took {jittered}ms > {budget}ms\n{text}");
            }
            prop_assert!(filler < budget, "the filler at {filler}ms comes after the {budget}ms budget");
        }
    }
}

fn worst_with_capped_sleeps(timeout: u64, attempts: u32, cap: u64) -> u64 {
    timeout * attempts as u64 + cap * (attempts as u64 - 1)
}

#[test]
fn check_passes_the_embedded_default_and_prints_each_worst_case() {
    let config = Config::embedded_default().unwrap();
    let (report, ok) = check(&config);
    assert!(ok, "{report}");
    assert!(report.contains("voice        ok    worst case 2 attempts × 1.2s + 1 backoff sleep ≤ 400ms = 2.8s, budget 3.2s"), "{report}");
    for service in ["amplitude", "salesforce", "hubspot", "chilipiper"] {
        assert!(report.contains(&format!("  {service:<12} ok")), "{report}");
    }
}

#[test]
fn a_voice_profile_that_misses_the_first_speech_target_is_refused_by_field() {
    let text = profile_toml(3200, 1200, 2, "full", 100, 400, 900, 1000)
        .replace("profiles.p", "profiles.voice")
        .replace("\"p\"", "\"voice\"");
    let error = Config::from_toml(&text, "slow.toml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "slow.toml:8: profiles.voice.filler_after: 900ms misses the voice profile's first-speech target: the caller must hear something within 750ms of a tool starting; set it to at most 750ms"
    );
}

#[test]
fn a_voice_profile_past_the_resolution_target_is_refused_by_field() {
    let text = profile_toml(4000, 1200, 2, "full", 100, 400, 600, 1000)
        .replace("profiles.p", "profiles.voice")
        .replace("\"p\"", "\"voice\"");
    let error = Config::from_toml(&text, "slow.toml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "slow.toml:4: profiles.voice.budget: 4s exceeds the voice profile's resolution target: the answer or the failure phrase must come within 3.5s; lower it to at most 3.5s"
    );
}

#[test]
fn check_marks_a_voice_profile_that_misses_the_first_speech_target() {
    // Built in memory: validation refuses such a file before the check runs.
    let mut config = Config::embedded_default().unwrap();
    let voice = config.profiles.get_mut("voice").unwrap();
    voice.filler_after = std::time::Duration::from_millis(900);
    let (report, ok) = check(&config);
    assert!(!ok);
    assert!(report.contains("voice        FAIL"), "{report}");
    assert!(
        report.contains("first speech misses the 750ms voice target"),
        "{report}"
    );
}

/// The column of `at_ms` on the axis drawn in `section`'s header.
fn column_of(section: &str, at_ms: u64) -> usize {
    let labels = section
        .lines()
        .find(|l| l.trim_start().starts_with("0 "))
        .unwrap();
    let ruler = section
        .lines()
        .find(|l| l.trim_start().starts_with('+'))
        .unwrap();
    let first = ruler.find('+').unwrap();
    let last = ruler.rfind('+').unwrap();
    let end_ms: u64 = labels
        .split_whitespace()
        .rev()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    first + ((at_ms as f64 / end_ms as f64) * (last - first) as f64).round() as usize
}

fn row<'a>(section: &'a str, label: &str) -> &'a str {
    section
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} row in\n{section}"))
}

#[test]
fn explain_marks_the_filler_at_filler_after_and_the_end_of_the_budget() {
    let config = Config::embedded_default().unwrap();
    let text = explain(&config, "voice").unwrap();
    let worst = &text[text.find("worst case:").unwrap()..];
    let filler = row(worst, "filler");
    assert_eq!(filler.find('^'), Some(column_of(worst, 600)), "\n{worst}");
    assert!(filler.ends_with("600ms filler phrase"));
    let still = row(worst, "still_working");
    assert_eq!(still.find('^'), Some(column_of(worst, 2100)), "\n{worst}");
    let budget = row(worst, "budget end");
    assert_eq!(budget.find('|'), Some(column_of(worst, 3200)), "\n{worst}");
    assert!(budget.ends_with("3.2s (400ms to spare)"));
    assert!(row(worst, "outcome").ends_with("2.8s failure phrase spoken"));
    assert!(text.contains("typical: the first attempt answers after 500ms"));
}

#[test]
fn explain_accepts_a_service_and_refuses_an_unknown_name() {
    let config = Config::embedded_default().unwrap();
    assert!(
        explain(&config, "chilipiper")
            .unwrap()
            .starts_with("service chilipiper (\"the calendar\"): profile voice")
    );
    assert_eq!(
        explain(&config, "zendesk").unwrap_err().to_string(),
        "no profile or service named \"zendesk\"; profiles: batch, chat, telephony, voice; services: amplitude, chilipiper, hubspot, salesforce"
    );
}

#[test]
fn tune_recommends_from_observed_latencies_as_a_diff() {
    // 100 successes at 101..=200 ms (p90 190ms, p99 199ms) and 5 errors.
    let mut samples: Vec<LatencySample> = (101..=200)
        .map(|ms| LatencySample {
            service: "hubspot".into(),
            latency_ms: ms as f64,
            outcome: SampleOutcome::Ok,
        })
        .collect();
    samples.extend((0..5).map(|_| LatencySample {
        service: "hubspot".into(),
        latency_ms: 40.0,
        outcome: SampleOutcome::Error,
    }));
    let mut jsonl = Vec::new();
    write_jsonl(&mut jsonl, &samples).unwrap();
    let config = Config::embedded_default().unwrap();
    let report = tune(&config, std::str::from_utf8(&jsonl).unwrap()).unwrap();
    let expected = "\
[services.hubspot]
# profile voice; 105 samples: 100 ok, 5 error, 0 timeout; successes p50 150ms, p90 190ms, p99 199ms
- attempt_timeout = \"1.2s\"
+ attempt_timeout = \"300ms\"
  # p99 199ms × 1.5 margin = 298.5ms, rounded up to 50ms
- max_attempts = 2
+ max_attempts = 4
  # 5 would fit the budget, but the breaker (consecutive_failures 5, min_calls 10) must not open on one request's retries
- filler_after = \"600ms\"
+ filler_after = \"300ms\"
  # p90 190ms → 200ms, kept within [300ms, current 600ms] so first speech never gets later
- slow_call_threshold = \"1s\"
+ slow_call_threshold = \"200ms\"
  # p99 199ms: slower than 99 in 100 normal answers counts as slow (below attempt_timeout)
# result: worst case 4 attempts × 300ms + 3 backoff sleeps ≤ 400ms = 2.4s ≤ budget 3.2s
";
    assert!(report.ends_with(expected), "got:\n{report}");

    let csv = "service,latency_ms,outcome\n".to_string()
        + &samples
            .iter()
            .map(|s| format!("{},{},{}\n", s.service, s.latency_ms, s.outcome.as_str()))
            .collect::<String>();
    assert_eq!(
        tune(&config, &csv).unwrap(),
        report,
        "CSV and JSON lines give the same advice"
    );
}
