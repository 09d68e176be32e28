//! PhraseBook and PhraseSession: no repeats, exhaustion before reuse, promise
//! filtering, escalation levels, and load errors that name file and line.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use voxguard::recovery::phrases::*;

fn ctx(level: Level, allowed: PromiseSet) -> PhraseContext<'static> {
    PhraseContext {
        service_display: "the calendar",
        level,
        allowed_promises: allowed,
    }
}

#[test]
fn no_category_ever_repeats_a_phrase_back_to_back_over_ten_thousand_draws() {
    let book = PhraseBook::embedded();
    let mut chooser = SmallRng::seed_from_u64(99);
    for category in Category::ALL {
        let mut session = PhraseSession::new(book.clone(), 1234);
        let mut last: Option<String> = None;
        for _ in 0..10_000 {
            // Mix levels and promise sets, as a real session would.
            let level = Level::ALL[chooser.random_range(0..3)];
            let allowed = if chooser.random_bool(0.5) {
                PromiseSet::NONE_ONLY
            } else {
                PromiseSet::of(&Promise::ALL)
            };
            let phrase = session.draw(category, &ctx(level, allowed)).unwrap();
            assert_ne!(Some(&phrase.text), last.as_ref(), "{category} repeated");
            last = Some(phrase.text);
        }
    }
}

#[test]
fn every_eligible_variant_is_heard_once_before_any_is_reused() {
    let book = PhraseBook::embedded();
    for category in Category::ALL {
        let c = ctx(Level::First, PromiseSet::NONE_ONLY);
        let eligible = book
            .variants(category)
            .iter()
            .filter(|v| v.fits(Level::First, PromiseSet::NONE_ONLY))
            .count();
        let mut session = PhraseSession::new(book.clone(), 7);
        for round in 0..50 {
            let drawn: BTreeSet<usize> = (0..eligible)
                .map(|_| session.draw(category, &c).unwrap().variant)
                .collect();
            assert_eq!(
                drawn.len(),
                eligible,
                "{category} round {round} reused a variant early"
            );
        }
    }
}

#[test]
fn only_phrases_with_an_allowed_promise_are_drawn() {
    let book = PhraseBook::embedded();
    let mut session = PhraseSession::new(book.clone(), 3);
    for _ in 0..500 {
        let p = session
            .draw(Category::Filler, &ctx(Level::First, PromiseSet::NONE_ONLY))
            .unwrap();
        assert_eq!(p.promises, Promise::None);
        let p = session
            .draw(
                Category::StillWorking,
                &ctx(Level::First, PromiseSet::EMPTY.with(Promise::Retry)),
            )
            .unwrap();
        assert_eq!(p.promises, Promise::Retry);
    }
    let err = session
        .draw(
            Category::Handoff,
            &ctx(Level::First, PromiseSet::EMPTY.with(Promise::Retry)),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        DrawError::NoEligibleVariant {
            category: Category::Handoff,
            ..
        }
    ));
}

#[test]
fn each_escalation_level_sounds_different() {
    let book = PhraseBook::embedded();
    for category in Category::ALL.into_iter().filter(|c| c.escalates()) {
        let mut by_level: HashMap<Level, BTreeSet<String>> = HashMap::new();
        for level in Level::ALL {
            let mut session = PhraseSession::new(book.clone(), 11);
            for _ in 0..20 {
                by_level.entry(level).or_default().insert(
                    session
                        .draw(category, &ctx(level, PromiseSet::NONE_ONLY))
                        .unwrap()
                        .text,
                );
            }
        }
        assert!(
            by_level[&Level::First].is_disjoint(&by_level[&Level::Repeat]),
            "{category}"
        );
        assert!(
            by_level[&Level::Repeat].is_disjoint(&by_level[&Level::Open]),
            "{category}"
        );
        assert!(
            by_level[&Level::First].is_disjoint(&by_level[&Level::Open]),
            "{category}"
        );
    }
}

#[test]
fn the_same_seed_draws_the_same_sequence() {
    let book = PhraseBook::embedded();
    let draws = |seed| {
        let mut s = PhraseSession::new(book.clone(), seed);
        (0..30)
            .map(|_| {
                s.draw(Category::Filler, &ctx(Level::First, PromiseSet::NONE_ONLY))
                    .unwrap()
                    .text
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(5), draws(5));
    assert_ne!(draws(5), draws(6));
}

#[test]
fn the_service_display_name_is_filled_in() {
    let mut session = PhraseSession::new(PhraseBook::embedded(), 1);
    let c = PhraseContext {
        service_display: "your account records",
        level: Level::First,
        allowed_promises: PromiseSet::NONE_ONLY,
    };
    for _ in 0..20 {
        let text = session.draw(Category::Recovered, &c).unwrap().text;
        assert!(
            text.contains("your account records") || text.contains("Your account records"),
            "{text}"
        );
        assert!(!text.contains('{'));
    }
}

// ---------------------------------------------------------------- load errors

/// A valid book in which `category`'s section is replaced by `section`.
fn book_with(category: &str, section: &str) -> String {
    let mut out = String::new();
    for c in Category::ALL {
        if c.as_str() == category {
            out.push_str(section);
            continue;
        }
        for (i, level) in levels_for(c).iter().enumerate() {
            for n in 0..2 {
                let level_line = level
                    .map(|l| format!("level = \"{}\"\n", l.as_str()))
                    .unwrap_or_default();
                out.push_str(&format!("[[{}]]\n{level_line}text = \"{} {i} {n} at {{service}}\"\npromises = \"none\"\n\n", c.as_str(), c.as_str()));
            }
        }
    }
    out
}

fn levels_for(c: Category) -> Vec<Option<Level>> {
    if c.escalates() {
        Level::ALL.map(Some).to_vec()
    } else {
        vec![None, None, None]
    }
}

fn error_for(text: &str) -> PhraseBookError {
    PhraseBook::from_str(text, "phrases.toml").unwrap_err()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn the_generated_baseline_book_is_valid() {
    PhraseBook::from_str(&book_with("none", ""), "phrases.toml").unwrap();
}

#[test]
fn bad_toml_is_reported_with_its_line() {
    let text = book_with(
        "handoff",
        "[[handoff]]\ntext = \"unterminated\npromises = \"none\"\n",
    );
    let err = error_for(&text);
    assert!(matches!(err.problem, PhraseProblem::Syntax(_)));
    assert_eq!(err.line, Some(line_of(&text, "unterminated")));
    assert!(
        err.to_string()
            .starts_with(&format!("phrases.toml:{}:", line_of(&text, "unterminated")))
    );
}

#[test]
fn an_unknown_placeholder_is_reported_with_its_line_and_column() {
    let section = "[[recovered]]\ntext = \"{servce} is back\"\npromises = \"none\"\n".to_string()
        + &(0..5)
            .map(|i| format!("[[recovered]]\ntext = \"back {i}\"\npromises = \"none\"\n"))
            .collect::<String>();
    let text = book_with("recovered", &section);
    let err = error_for(&text);
    assert_eq!(
        err.problem,
        PhraseProblem::UnknownPlaceholder {
            category: Category::Recovered,
            name: "servce".into()
        }
    );
    assert_eq!(err.line, Some(line_of(&text, "{servce}")));
    assert_eq!(err.column, Some(8));
    assert_eq!(
        err.to_string(),
        format!(
            "phrases.toml:{}:8: unknown placeholder `{{servce}}` in a `recovered` variant (the only placeholder is {{service}})",
            line_of(&text, "{servce}")
        )
    );
}

#[test]
fn an_unbalanced_brace_is_an_error() {
    let section = (0..5)
        .map(|i| format!("[[recovered]]\ntext = \"back {i} {{service\"\npromises = \"none\"\n"))
        .collect::<String>();
    assert_eq!(
        error_for(&book_with("recovered", &section)).problem,
        PhraseProblem::UnbalancedBrace(Category::Recovered)
    );
}

#[test]
fn a_missing_category_is_named() {
    let err = error_for(&book_with("handoff", ""));
    assert_eq!(
        err.problem,
        PhraseProblem::MissingCategory(Category::Handoff)
    );
    assert_eq!(
        err.to_string(),
        "phrases.toml: category `handoff` is missing"
    );
}

#[test]
fn a_category_with_fewer_than_five_variants_is_too_small() {
    let section = (0..4)
        .map(|i| format!("[[handoff]]\ntext = \"bye {i}\"\npromises = \"none\"\n"))
        .collect::<String>();
    let text = book_with("handoff", &section);
    let err = error_for(&text);
    assert_eq!(
        err.problem,
        PhraseProblem::TooFewVariants {
            category: Category::Handoff,
            found: 4
        }
    );
    assert_eq!(err.line, Some(line_of(&text, "[[handoff]]")));
    assert!(
        err.to_string()
            .ends_with("category `handoff` has 4 variants; at least 5 are needed")
    );
}

#[test]
fn a_level_without_enough_promise_free_variants_is_reported() {
    // Five timeout variants, but the `open` level only has one that promises nothing.
    let section = [
        ("first", "none"),
        ("first", "none"),
        ("repeat", "none"),
        ("repeat", "none"),
        ("open", "none"),
        ("open", "alternative"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (level, promises))| {
        format!(
            "[[timeout]]\nlevel = \"{level}\"\ntext = \"slow {i}\"\npromises = \"{promises}\"\n"
        )
    })
    .collect::<String>();
    let err = error_for(&book_with("timeout", &section));
    assert_eq!(
        err.problem,
        PhraseProblem::MissingCoverage {
            category: Category::Timeout,
            level: Some(Level::Open),
            promises: PromiseSet::NONE_ONLY,
            found: 1
        }
    );
    assert!(err.to_string().contains("category `timeout` needs at least 2 variants for level `open` with promises in {none}; it has 1"));
}

#[test]
fn an_unknown_category_is_reported_at_its_header() {
    let text = book_with("none", "") + "[[apology]]\ntext = \"sorry\"\npromises = \"none\"\n";
    let err = error_for(&text);
    assert_eq!(
        err.problem,
        PhraseProblem::UnknownCategory {
            name: "apology".into()
        }
    );
    assert_eq!(err.line, Some(line_of(&text, "[[apology]]")));
}

#[test]
fn a_misspelt_field_or_level_is_a_syntax_error_naming_the_line() {
    let text = book_with(
        "handoff",
        "[[handoff]]\ntext = \"bye\"\npromise = \"none\"\n",
    );
    let err = error_for(&text);
    assert_eq!(err.line, Some(line_of(&text, "promise = ")));
    assert!(err.to_string().contains("unknown field `promise`"), "{err}");

    let text = book_with(
        "timeout",
        "[[timeout]]\nlevel = \"frist\"\ntext = \"slow\"\npromises = \"none\"\n",
    );
    let err = error_for(&text);
    assert_eq!(err.line, Some(line_of(&text, "frist")));
}

#[test]
fn a_level_on_a_category_that_does_not_escalate_is_refused() {
    let section = (0..5)
        .map(|i| {
            format!("[[handoff]]\nlevel = \"open\"\ntext = \"bye {i}\"\npromises = \"none\"\n")
        })
        .collect::<String>();
    assert_eq!(
        error_for(&book_with("handoff", &section)).problem,
        PhraseProblem::LevelNotApplicable(Category::Handoff)
    );
}

#[test]
fn empty_and_duplicate_texts_are_refused() {
    let empty = (0..5)
        .map(|i| {
            format!(
                "[[handoff]]\ntext = \"{}\"\npromises = \"none\"\n",
                if i == 2 { "  " } else { "bye" }
            )
        })
        .collect::<String>();
    assert_eq!(
        error_for(&book_with("handoff", &empty)).problem,
        PhraseProblem::DuplicateVariant(Category::Handoff)
    );
    let blank = "[[handoff]]\ntext = \"   \"\npromises = \"none\"\n";
    assert_eq!(
        error_for(&book_with("handoff", blank)).problem,
        PhraseProblem::EmptyText(Category::Handoff)
    );
}

#[test]
fn a_missing_file_names_the_path() {
    let err = PhraseBook::load("/nonexistent/phrases.toml").unwrap_err();
    assert!(matches!(err.problem, PhraseProblem::Unreadable(_)));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/phrases.toml: cannot read the file")
    );
}

#[test]
fn the_repository_file_loads_from_disk_and_matches_the_embedded_book() {
    let from_disk = PhraseBook::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../prompts/phrases.toml"
    ))
    .unwrap();
    let embedded: Arc<PhraseBook> = PhraseBook::embedded();
    for c in Category::ALL {
        assert_eq!(from_disk.variants(c), embedded.variants(c));
    }
}
