//! Drawing phrases for one conversation: a shuffle bag per category, so no
//! variant repeats back to back and none is reused before the eligible ones
//! are exhausted. Randomness comes from a seeded `SmallRng`.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::book::render;
use super::{Category, Level, PhraseBook, Promise, PromiseSet};

/// What the speaker knows when it asks for a phrase.
#[derive(Debug, Clone, Copy)]
pub struct PhraseContext<'a> {
    /// Fills `{service}`, e.g. "the calendar".
    pub service_display: &'a str,
    /// Ignored by categories that do not escalate.
    pub level: Level,
    /// Only variants whose promise is in this set are eligible.
    pub allowed_promises: PromiseSet,
}

/// A phrase ready to speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub text: String,
    pub category: Category,
    pub promises: Promise,
    /// Index of the variant within its category, for diagnostics and tests.
    pub variant: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DrawError {
    #[error("no `{category}` variant fits level `{}` with promises in {promises}", level.as_str())]
    NoEligibleVariant {
        category: Category,
        level: Level,
        promises: PromiseSet,
    },
}

#[derive(Debug, Clone, Default)]
struct Bag {
    /// Variants drawn since the bag was last refilled.
    used: Vec<bool>,
    last: Option<usize>,
}

/// Per-conversation phrase drawing. Cheap to create; holds the shared book.
///
/// ```
/// use voxguard::recovery::phrases::{Category, Level, PhraseBook, PhraseContext, PhraseSession, PromiseSet, Promise};
///
/// let mut phrases = PhraseSession::new(PhraseBook::embedded(), 7);
/// let ctx = PhraseContext { service_display: "the calendar", level: Level::First, allowed_promises: PromiseSet::NONE_ONLY };
/// let first = phrases.draw(Category::Timeout, &ctx).unwrap();
/// let second = phrases.draw(Category::Timeout, &ctx).unwrap();
/// assert_ne!(first.text, second.text);
/// assert_eq!(first.promises, Promise::None);
/// ```
#[derive(Debug, Clone)]
pub struct PhraseSession {
    book: Arc<PhraseBook>,
    rng: SmallRng,
    bags: Vec<Bag>,
}

impl PhraseSession {
    pub fn new(book: Arc<PhraseBook>, seed: u64) -> PhraseSession {
        let bags = Category::ALL
            .iter()
            .map(|c| Bag {
                used: vec![false; book.variants(*c).len()],
                last: None,
            })
            .collect();
        PhraseSession {
            book,
            rng: SmallRng::seed_from_u64(seed),
            bags,
        }
    }

    pub fn book(&self) -> &Arc<PhraseBook> {
        &self.book
    }

    /// Draw the next phrase of `category` that fits `ctx`.
    pub fn draw(
        &mut self,
        category: Category,
        ctx: &PhraseContext<'_>,
    ) -> Result<Phrase, DrawError> {
        let variants = self.book.variants(category);
        let eligible: Vec<usize> = (0..variants.len())
            .filter(|&i| {
                let v = &variants[i];
                allowed_level(category, v.level, ctx.level)
                    && ctx.allowed_promises.contains(v.promises)
            })
            .collect();
        if eligible.is_empty() {
            return Err(DrawError::NoEligibleVariant {
                category,
                level: ctx.level,
                promises: ctx.allowed_promises,
            });
        }
        let bag = &mut self.bags[category.index()];
        let mut candidates: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| !bag.used[i] && Some(i) != bag.last)
            .collect();
        if candidates.is_empty() {
            // Everything eligible has been heard: refill, but never open the new
            // round with the phrase that closed the old one.
            for &i in &eligible {
                bag.used[i] = false;
            }
            candidates = eligible
                .iter()
                .copied()
                .filter(|&i| Some(i) != bag.last)
                .collect();
            if candidates.is_empty() {
                candidates = eligible;
            }
        }
        let pick = candidates[self.rng.random_range(0..candidates.len())];
        bag.used[pick] = true;
        bag.last = Some(pick);
        let variant = &variants[pick];
        Ok(Phrase {
            text: render(&variant.text, ctx.service_display),
            category,
            promises: variant.promises,
            variant: pick,
        })
    }

    /// A fresh value from the session's RNG (used for idempotency keys).
    pub fn next_random(&mut self) -> u64 {
        self.rng.random()
    }
}

fn allowed_level(category: Category, variant_level: Option<Level>, wanted: Level) -> bool {
    !category.escalates() || variant_level.is_none_or(|l| l == wanted)
}
