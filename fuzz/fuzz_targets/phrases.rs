//! The phrase book: TOML text through `PhraseBook::from_str` (parse and
//! validation), then drawing and rendering from a book that validated.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use voxguard::recovery::phrases::{
    Category, Level, MIN_VARIANTS, PhraseBook, PhraseContext, PhraseProblem, PhraseSession,
    PromiseSet,
};

const SOURCE: &str = "fuzz-phrases.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PhraseBook::from_str(text, SOURCE) {
        Ok(book) => valid(Arc::new(book)),
        Err(error) => {
            assert_eq!(error.source_name, SOURCE);
            assert!(error.to_string().starts_with(SOURCE));
            let lines = text.split('\n').count();
            match (&error.problem, error.line, error.column) {
                // Only something absent has no place in the text.
                (PhraseProblem::MissingCategory(_), None, None) => {}
                (PhraseProblem::MissingCategory(_), _, _) => panic!("{error}"),
                (_, Some(line), Some(column)) => {
                    assert!((1..=lines).contains(&line), "{error}");
                    let width = text.split('\n').nth(line - 1).unwrap().chars().count();
                    assert!((1..=width + 1).contains(&column), "{error}");
                }
                (_, _, _) => panic!("a problem without line and column: {error}"),
            }
        }
    }
});

/// A valid book can be spoken from: every category at every level draws a
/// promise-free phrase, never the same one twice in a row, with `{service}`
/// filled in.
fn valid(book: Arc<PhraseBook>) {
    let mut session = PhraseSession::new(Arc::clone(&book), 11);
    for category in Category::ALL {
        assert!(book.variants(category).len() >= MIN_VARIANTS);
        for level in Level::ALL {
            let ctx = PhraseContext {
                service_display: "the calendar",
                level,
                allowed_promises: PromiseSet::NONE_ONLY,
            };
            let first = session
                .draw(category, &ctx)
                .expect("a validated book draws");
            let second = session
                .draw(category, &ctx)
                .expect("a validated book draws");
            assert_ne!(first.variant, second.variant, "{category} repeated itself");
            for phrase in [first, second] {
                assert!(!phrase.text.contains("{service}"), "{}", phrase.text);
                assert!(!phrase.text.trim().is_empty());
            }
        }
    }
}
